"""Every endpoint of `ductape serve` and every error code, through a real server on a free port."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.server.conftest import Served


def wait_status(
    served: Served, run_id: str, wanted: set[str], timeout: float = 30
) -> dict[str, Any]:
    with served.client() as c:
        deadline = time.monotonic() + timeout
        while True:
            body = c.get(f"/api/workflows/runs/{run_id}").json()
            if body["status"] in wanted or time.monotonic() > deadline:
                assert body["status"] in wanted, body
                return body  # type: ignore[no-any-return]
            time.sleep(0.05)


def wait_waiting(served: Served, run_id: str, kind: str, timeout: float = 30) -> dict[str, Any]:
    with served.client() as c:
        deadline = time.monotonic() + timeout
        while True:
            body = c.get(f"/api/workflows/runs/{run_id}").json()
            if (body.get("waiting") or {}).get("kind") == kind:
                return body  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, body
            time.sleep(0.05)


def start(served: Served, workflow: str, input: Any = None, **options: Any) -> str:
    with served.client() as c:
        response = c.post(
            "/api/workflows/runs",
            json={"workflow": workflow, "input": input or {}, "options": options},
        )
    assert response.status_code == 201, response.text
    return response.json()["executionId"]  # type: ignore[no-any-return]


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text
    return body["error"]  # type: ignore[no-any-return]


def test_execute_returns_at_once_and_the_worker_runs_it(served: Served) -> None:
    with served.client() as c:
        began = time.monotonic()
        response = c.post(
            "/api/workflows/runs",
            json={
                "workflow": "greet",
                "input": {"name": "ada"},
                "options": {
                    "timeout": 60000,
                    "retries": 2,
                    "metadata": {"source": "frontend", "triggeredBy": "user-action"},
                },
            },
        )
        took = time.monotonic() - began
    assert response.status_code == 201
    body = response.json()
    assert (
        body["status"] == "pending"
        and body["executionId"].startswith("wf_")
        and body["created"] is True
    )
    assert took < 2.0  # a start queues; the worker executes
    done = wait_status(served, body["executionId"], {"completed"})
    assert done["result"] == {"hello": "ada", "n": 3}
    assert done["error"] is None and done["completedSteps"] == ["first", "second", "third"]
    assert done["metadata"] == {"source": "frontend", "triggeredBy": "user-action"}
    assert done["startedAt"] and done["completedAt"] and done["workflow"] == "greet"


def test_workflow_id_idempotency_key_and_env_options(served: Served) -> None:
    with served.client() as c:
        first = c.post(
            "/api/workflows/runs",
            json={
                "workflow": "greet",
                "input": {"name": "x"},
                "options": {"workflowId": "order-1", "idempotencyKey": "k-1", "env": "dev"},
            },
        )
        assert first.status_code == 201 and first.json()["executionId"] == "order-1"
        again = c.post(
            "/api/workflows/runs",
            json={
                "workflow": "greet",
                "input": {"name": "x"},
                "options": {"idempotency_key": "k-1"},
            },
        )
        assert again.status_code == 200 and again.json() == {
            **first.json(),
            "created": False,
            "status": again.json()["status"],
        }
        conflict = c.post(
            "/api/workflows/runs",
            json={
                "workflow": "greet",
                "input": {"name": "other"},
                "options": {"idempotencyKey": "k-1"},
            },
        )
        assert_error(conflict, 409, "CONFLICT")
        taken = c.post(
            "/api/workflows/runs", json={"workflow": "greet", "options": {"workflowId": "order-1"}}
        )
        assert_error(taken, 409, "CONFLICT")
        assert c.get("/api/workflows/runs").json()["count"] == 1


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"workflow": "nope"}, 404, "WORKFLOW_NOT_FOUND"),
        ({"workflow": "greet", "options": {"timeout": "soon"}}, 400, "INVALID_INPUT"),
        ({"workflow": "greet", "options": {"env": "moon"}}, 400, "CONFIG_ERROR"),
        ({"workflow": "greet", "options": {"workflowId": "has space"}}, 400, "INVALID_INPUT"),
        ({"workflow": "greet", "options": {"retries": -1}}, 422, "VALIDATION_ERROR"),
        (
            {"workflow": "greet", "options": {"metadata": ["not", "an", "object"]}},
            422,
            "VALIDATION_ERROR",
        ),
        ({"workflow": "greet", "options": {"colour": "red"}}, 422, "VALIDATION_ERROR"),
        ({"input": {}}, 422, "VALIDATION_ERROR"),
        (
            {"workflow": "greet", "options": {"metadata": {"blob": "x" * 20_000}}},
            400,
            "INVALID_INPUT",
        ),
    ],
)
def test_bad_starts_are_4xx_and_write_nothing(
    served: Served, body: dict[str, Any], status: int, code: str
) -> None:
    with served.client() as c:
        assert_error(c.post("/api/workflows/runs", json=body), status, code)
        assert c.get("/api/workflows/runs").json() == {"count": 0, "executions": []}


def test_malformed_json_is_422(served: Served) -> None:
    with served.client() as c:
        response = c.post(
            "/api/workflows/runs",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert_error(response, 422, "VALIDATION_ERROR")


def test_list_filters_pages_and_counts(served: Served) -> None:
    ids = [start(served, "greet", {"name": str(i)}) for i in range(3)]
    failed = start(served, "failing")
    for run_id in ids:
        wait_status(served, run_id, {"completed"})
    wait_status(served, failed, {"failed", "rolled_back"})
    with served.client() as c:
        page = c.get(
            "/api/workflows/runs",
            params={"workflow": "greet", "status": "completed", "limit": 2, "offset": 0},
        ).json()
        assert page["count"] == 3 and len(page["executions"]) == 2
        assert page["executions"][0]["executionId"] == ids[-1]  # newest first
        rest = c.get(
            "/api/workflows/runs", params={"workflow": "greet", "limit": 2, "offset": 2}
        ).json()
        assert [e["executionId"] for e in rest["executions"]] == [ids[0]]
        assert c.get("/api/workflows/runs", params={"status": "failed"}).json()["count"] == 1
        assert_error(
            c.get("/api/workflows/runs", params={"status": "sleepy"}), 400, "INVALID_INPUT"
        )
        assert_error(c.get("/api/workflows/runs", params={"limit": 0}), 422, "VALIDATION_ERROR")


def test_get_status_history_and_unknown_run(served: Served) -> None:
    run_id = start(served, "greet")
    wait_status(served, run_id, {"completed"})
    with served.client() as c:
        history = c.get(f"/api/workflows/runs/{run_id}/history").json()
        types = [e["type"] for e in history["events"]]
        assert types[0] == "workflow_started" and types[-1] == "workflow_completed"
        assert types.count("step_completed") == 3
        assert all({"timestamp", "type", "data"} <= set(e) for e in history["events"])
        for path in ("", "/history", "/children", "/parent", "/events", "/related"):
            assert_error(c.get(f"/api/workflows/runs/wf_missing{path}"), 404, "RUN_NOT_FOUND")
        assert_error(c.delete("/api/workflows/runs/wf_missing"), 404, "RUN_NOT_FOUND")
        assert_error(c.get("/api/nothing-here"), 404, "NOT_FOUND")


def test_failed_run_reports_error_message_and_detail(served: Served) -> None:
    run_id = start(served, "failing")
    done = wait_status(served, run_id, {"failed"})
    assert (
        done["error"] == "boom"
        and done["errorDetail"]["step"] == "explode"
        and done["failedStep"] == "explode"
    )


def test_retries_start_fresh_runs_of_a_failed_run(served: Served) -> None:
    run_id = start(served, "failing", retries=1)
    wait_status(served, run_id, {"failed"})
    wait_status(served, f"{run_id}-r1", {"failed"})
    with served.client() as c:
        retry = c.get(f"/api/workflows/runs/{run_id}-r1").json()
        assert retry["restartedFrom"] == run_id
        time.sleep(0.5)  # no third run: the retries are used up
        assert c.get("/api/workflows/runs", params={"workflow": "failing"}).json()["count"] == 2


def test_signal_by_path_and_by_patch_and_refusals(served: Served) -> None:
    first = start(served, "approval")
    second = start(served, "approval")
    wait_waiting(served, first, "signal")
    wait_waiting(served, second, "signal")
    with served.client() as c:
        assert_error(
            c.post(f"/api/workflows/runs/{first}/signals/approve", json={"data": {"by": 7}}),
            400,
            "INVALID_INPUT",
        )
        assert_error(
            c.post(f"/api/workflows/runs/{first}/signals/unheard", json={"data": {}}),
            400,
            "INVALID_INPUT",
        )
        sent = c.post(f"/api/workflows/runs/{first}/signals/approve", json={"data": {"by": "mgr"}})
        assert sent.status_code == 200, sent.text
        patched = c.patch(
            f"/api/workflows/runs/{second}",
            json={"signal": {"name": "approve", "data": {"by": "cto"}}},
        )
        assert patched.status_code == 200, patched.text
    assert wait_status(served, first, {"completed"})["result"] == {"approved_by": "mgr"}
    assert wait_status(served, second, {"completed"})["result"] == {"approved_by": "cto"}
    with served.client() as c:
        late = c.post(f"/api/workflows/runs/{first}/signals/approve", json={"data": {"by": "late"}})
        assert_error(late, 409, "INVALID_STATE")


def test_patch_metadata_merges_and_empty_patch_is_refused(served: Served) -> None:
    run_id = start(served, "greet", metadata={"a": 1, "b": 2})
    with served.client() as c:
        body = c.patch(
            f"/api/workflows/runs/{run_id}", json={"metadata": {"b": None, "c": 3}}
        ).json()
        assert body["metadata"] == {"a": 1, "c": 3}
        listed = c.get("/api/workflows/runs").json()["executions"][0]
        assert listed["metadata"] == {"a": 1, "c": 3}
        assert_error(c.patch(f"/api/workflows/runs/{run_id}", json={}), 400, "INVALID_INPUT")
        assert_error(
            c.patch(f"/api/workflows/runs/{run_id}", json={"status": "done"}),
            422,
            "VALIDATION_ERROR",
        )


def test_cancel_by_delete_and_by_patch(served: Served) -> None:
    first = start(served, "approval")
    second = start(served, "approval")
    wait_waiting(served, first, "signal")
    wait_waiting(served, second, "signal")
    with served.client() as c:
        cancelled = c.delete(
            f"/api/workflows/runs/{first}", params={"reason": "User cancelled the operation"}
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["reason"] == "User cancelled the operation"
        patched = c.patch(f"/api/workflows/runs/{second}", json={"cancel": {"reason": "by patch"}})
        assert patched.status_code == 200, patched.text
    wait_status(served, first, {"cancelled"})
    wait_status(served, second, {"cancelled"})
    with served.client() as c:
        assert_error(c.delete(f"/api/workflows/runs/{first}"), 409, "INVALID_STATE")


def test_children_and_parent(served: Served) -> None:
    parent_id = start(served, "family")
    wait_status(served, parent_id, {"completed"})
    with served.client() as c:
        kids = c.get(f"/api/workflows/runs/{parent_id}/children").json()
        assert kids["count"] == 1
        child_id = kids["executions"][0]["executionId"]
        assert child_id == f"child-{parent_id}"
        assert (
            c.get(f"/api/workflows/runs/{child_id}/parent").json()["parent"]["executionId"]
            == parent_id
        )
        assert c.get(f"/api/workflows/runs/{parent_id}/parent").json()["parent"] is None
        assert c.get(f"/api/workflows/runs/{child_id}/children").json() == {
            "executionId": child_id,
            "count": 0,
            "executions": [],
        }


def test_custom_events(served: Served) -> None:
    run_id = start(served, "greet")
    with served.client() as c:
        made = c.post(
            "/api/workflows/events",
            json={"executionId": run_id, "type": "step-started", "payload": {"step": "x"}},
        )
        assert made.status_code == 201 and made.json()["type"] == "step-started"
        c.post("/api/workflows/events", json={"executionId": run_id, "type": "other", "payload": 1})
        events = c.get(f"/api/workflows/runs/{run_id}/events").json()["events"]
        assert [(e["type"], e["payload"]) for e in events] == [
            ("step-started", {"step": "x"}),
            ("other", 1),
        ]
        assert events == [
            dict(e) for e in served.project.engine().events(run_id)
        ]  # one shape: `ductape events --json`
        only = c.get(f"/api/workflows/runs/{run_id}/events", params={"type": "other"}).json()[
            "events"
        ]
        assert len(only) == 1
        assert_error(
            c.post("/api/workflows/events", json={"executionId": "wf_missing", "type": "t"}),
            404,
            "RUN_NOT_FOUND",
        )
        assert_error(
            c.post("/api/workflows/events", json={"executionId": run_id, "type": ""}),
            422,
            "VALIDATION_ERROR",
        )


def test_hooks_lookup_and_call(served: Served) -> None:
    run_id = start(served, "hooked", {"doc": "d-1"})
    wait_waiting(served, run_id, "hook")
    with served.client() as c:
        found = c.post(
            "/api/workflows/hooks", json={"executionId": run_id, "name": "document-approval"}
        ).json()
        assert found["hooks"][0]["data"] == {"doc": "d-1"}
        token = found["token"]
        assert_error(
            c.post("/api/workflows/hooks", json={"executionId": run_id, "name": "other"}),
            404,
            "HOOK_NOT_FOUND",
        )
        assert_error(
            c.post("/api/workflows/hooks/not-a-token", json={"data": {}}), 404, "HOOK_NOT_FOUND"
        )
        called = c.post(f"/api/workflows/hooks/{token}", json={"data": {"approved": True}})
        assert called.status_code == 200, called.text
        assert_error(
            c.post(f"/api/workflows/hooks/{token}", json={"data": {}}), 409, "INVALID_STATE"
        )
    done = wait_status(served, run_id, {"completed"})
    assert done["result"]["answer"]["approved"] is True


def test_replay_restart_resume_related_compare(served: Served) -> None:
    original = start(served, "greet", {"name": "one"})
    wait_status(served, original, {"completed"})
    failed = start(served, "failing")
    wait_status(served, failed, {"failed"})
    with served.client() as c:
        replayed = c.post(f"/api/workflows/runs/{original}/replay", json={"reason": "again"})
        assert replayed.status_code == 201, replayed.text
        assert (
            replayed.json()["replayedFrom"] == original and replayed.json()["status"] == "completed"
        )
        restarted = c.post(f"/api/workflows/runs/{original}/restart", json={"set": {"name": "two"}})
        assert restarted.status_code == 201, restarted.text
        assert restarted.json()["result"] == {"hello": "two", "n": 3}
        assert_error(
            c.post(f"/api/workflows/runs/{original}/restart", json={}), 400, "INVALID_INPUT"
        )
        assert_error(c.post(f"/api/workflows/runs/{original}/resume"), 409, "INVALID_STATE")
        resumed = c.post(f"/api/workflows/runs/{failed}/resume", json={"skip": ["explode"]})
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["status"] == "completed"
        family = c.get(f"/api/workflows/runs/{original}/related").json()
        assert {e["workflow_id"] for e in family["executions"]} >= {
            original,
            replayed.json()["executionId"],
        }
        diff = c.get(f"/api/workflows/runs/{original}/compare/{restarted.json()['executionId']}")
        assert diff.status_code == 200 and diff.json()
        assert_error(
            c.get(f"/api/workflows/runs/{original}/compare/wf_missing"), 404, "RUN_NOT_FOUND"
        )


def test_definitions(served: Served) -> None:
    run_id = start(served, "greet")
    wait_status(served, run_id, {"completed"})
    with served.client() as c:
        listing = c.get("/api/workflows").json()
        by_tag = {w["tag"]: w for w in listing["workflows"]}
        assert {"greet", "approval", "hooked", "failing", "family"} <= set(by_tag)
        assert by_tag["greet"]["steps"] == 3 and by_tag["greet"]["runs"] == {"completed": 1}
        one = c.get("/api/workflows/greet").json()
        assert [s["tag"] for s in one["schema"]["steps"]] == ["first", "second", "third"]
        assert_error(c.get("/api/workflows/nope"), 404, "WORKFLOW_NOT_FOUND")


def test_openapi_describes_every_route_and_body(served: Served) -> None:
    import httpx

    schema = httpx.get(served.url + "/api/openapi.json", headers=served.headers()).json()
    paths = schema["paths"]
    for path in (
        "/api/workflows/runs",
        "/api/workflows/runs/{run_id}",
        "/api/workflows/runs/{run_id}/signals/{name}",
        "/api/workflows/events",
        "/api/workflows/hooks",
        "/api/workflows/hooks/{token}",
        "/api/workflows/runs/{run_id}/subscribe",
        "/api/workflows/{tag}",
    ):
        assert path in paths, path
    assert {
        "StartRun",
        "RunOptions",
        "UpdateRun",
        "EmitEvent",
        "Replay",
        "Restart",
        "Resume",
    } <= set(schema["components"]["schemas"])


def test_body_size_is_bounded(project: Any) -> None:
    import httpx

    from tests.server.conftest import TOKEN, WORKFLOWS, start_service

    project.write("flows", WORKFLOWS)
    service = start_service(project, max_body_bytes=2048)
    try:
        url = f"http://127.0.0.1:{service.port}/api/workflows/runs"
        big = {"workflow": "greet", "input": {"blob": "x" * 5000}}
        response = httpx.post(url, json=big, headers={"Authorization": f"Bearer {TOKEN}"})
        assert_error(response, 413, "BODY_TOO_LARGE")

        def chunks() -> Any:  # no Content-Length: counted as it arrives
            yield b'{"workflow": "greet", "input": {"blob": "'
            for _ in range(10):
                yield b"x" * 1000
            yield b'"}}'

        streamed = httpx.post(
            url,
            content=chunks(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        assert_error(streamed, 413, "BODY_TOO_LARGE")
        listed = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert listed["count"] == 0
    finally:
        service.stop()


def test_metrics_are_scraped_behind_the_token(served: Served) -> None:
    run_id = start(served, "greet", {"name": "m"})
    wait_status(served, run_id, {"completed"})
    import httpx

    assert httpx.get(served.url + "/metrics").status_code == 401
    with served.client() as c:
        response = c.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'ductape_runs_ended_total{status="completed",workflow="greet"} 1.0' in text
    assert 'ductape_step_duration_seconds_count{status="completed",workflow="greet"} 3.0' in text
    assert "ductape_queue_depth" in text or "ductape_runs_by_state" in text


def test_serve_starts_a_run_per_message_for_message_triggers(project: Any) -> None:
    """`serve` runs a worker in-process, and with it the message triggers (here on a local topic)."""
    import asyncio

    from ductape_cli.components import ComponentRuntime
    from ductape_cli.config import load_config
    from tests.server.conftest import TOKEN, start_service

    config = project.root / "ductape.toml"
    config.write_text(config.read_text() + '\n[brokers.events]\ntopics = ["orders"]\n')
    project.write(
        "consumer",
        """
        from ductape_cli import workflow

        @workflow("order-created-handler", on_message="events:orders")
        def handle(ctx):
            return {"order": ctx.input.order}
    """,
    )
    service = start_service(project)
    try:
        direct = ComponentRuntime(load_config(project.root))
        for n in range(3):
            asyncio.run(direct.messaging.produce(event="events:orders", message={"order": n}))
        import httpx

        with httpx.Client(
            base_url=f"http://127.0.0.1:{service.port}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as c:
            deadline = time.monotonic() + 30
            while True:
                body = c.get(
                    "/api/workflows/runs",
                    params={"workflow": "order-created-handler", "status": "completed"},
                ).json()
                # The page and the count are two reads: a run may complete between them.
                done = body["count"] == 3 and len(body["executions"]) == 3
                if done or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert body["count"] == 3 and len(body["executions"]) == 3, body
            outputs = sorted(
                c.get(f"/api/workflows/runs/{e['executionId']}").json()["result"]["order"]
                for e in body["executions"]
            )
        assert outputs == [0, 1, 2]
    finally:
        service.stop()
