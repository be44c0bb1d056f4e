"""What the dashboard needs from `ductape serve` beyond the SDK's table: its files, text search, schedules."""

from __future__ import annotations

import httpx

from tests.server.conftest import Served


def test_the_page_and_its_modules_are_served_without_a_token(served: Served) -> None:
    page = httpx.get(served.url + "/", timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/dashboard/app.js">' in page.text
    module = httpx.get(served.url + "/dashboard/app.js", timeout=30)
    assert module.status_code == 200
    assert "javascript" in module.headers["content-type"]
    missing = httpx.get(served.url + "/dashboard/nothing.js", timeout=30)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"


def test_run_lists_search_the_id_input_and_metadata(served: Served) -> None:
    with served.client() as c:
        ids = {}
        for name, meta in (
            ("alice", {"team": "blue"}),
            ("bob", {"team": "red"}),
            ("50%_off", None),
        ):
            body = {
                "workflow": "greet",
                "input": {"name": name},
                "options": {"metadata": meta} if meta else {},
            }
            response = c.post("/api/workflows/runs", json=body)
            assert response.status_code == 201, response.text
            ids[name] = response.json()["executionId"]

        def found(text: str) -> set[str]:
            page = c.get("/api/workflows/runs", params={"search": text, "limit": 50}).json()
            assert page["count"] == len(page["executions"])
            return {r["executionId"] for r in page["executions"]}

        assert found("ALICE") == {ids["alice"]}  # input, any case
        assert found("red") == {ids["bob"]}  # metadata
        assert found(ids["bob"][-8:]) == {ids["bob"]}  # the run id
        assert found("%_") == {ids["50%_off"]}  # LIKE wildcards are literal text
        assert found("nobody") == set()
        assert found("") == set(ids.values())
        too_long = c.get("/api/workflows/runs", params={"search": "x" * 201})
        assert too_long.status_code == 422


def test_schedules_list_show_pause_and_resume(served: Served) -> None:
    from ductape_cli.engine import schedules

    engine = served.project.engine()
    try:
        job = schedules.create(
            engine, "greet", {"name": "cron"}, cron="0 9 * * *", timezone="Europe/Paris"
        )["job_id"]
    finally:
        engine.close()
    with served.client() as c:
        listed = c.get("/api/schedules").json()
        assert listed["count"] == 1
        row = listed["schedules"][0]
        assert (row["job_id"], row["tag"], row["cron"], row["paused"]) == (
            job,
            "greet",
            "0 9 * * *",
            False,
        )
        assert len(row["next_fire_times"]) == 3 and "T09:00:00+0" in row["next_fire_times"][0]

        assert c.post(f"/api/schedules/{job}/pause").json()["paused"] is True
        shown = c.get(f"/api/schedules/{job}").json()
        assert shown["paused"] is True and len(shown["next_fire_times"]) == 5
        assert c.post(f"/api/schedules/{job}/resume").json()["paused"] is False

        unknown = c.post("/api/schedules/job_nope/pause")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "SCHEDULE_NOT_FOUND"
    refused = httpx.get(served.url + "/api/schedules", timeout=30)
    assert refused.status_code == 401
