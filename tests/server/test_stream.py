"""Live updates: WebSocket and SSE subscriptions, the `since` cursor, runs written by other processes."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest

from tests.process.helpers import run as run_cli
from tests.server.conftest import Served
from tests.server.test_api import start, wait_status

DONE = {"completed", "failed", "rolled_back", "cancelled"}


async def ws_collect(
    url: str, until: Any, *, timeout: float = 30, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Events from a WebSocket subscription until `until(event)` is true."""
    import websockets

    events: list[dict[str, Any]] = []
    async with websockets.connect(url, additional_headers=headers or {}) as socket:

        async def read() -> None:
            while True:
                event = json.loads(await socket.recv())
                events.append(event)
                if until(event):
                    return

        await asyncio.wait_for(read(), timeout)
    return events


def sse_collect(
    served: Served,
    path: str,
    until: Any,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> list[dict[str, Any]]:
    import httpx

    events: list[dict[str, Any]] = []
    with httpx.Client(base_url=served.url, timeout=timeout) as c:
        with c.stream(
            "GET", path, headers=headers if headers is not None else served.headers()
        ) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    events.append(event)
                    if until(event):
                        break
    return events


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [
        e["type"] if e["type"] != "status_changed" else f"status:{e['data']['status']}"
        for e in events
    ]


def test_websocket_run_stream_from_the_beginning(served: Served) -> None:
    run_id = start(served, "greet", {"name": "ws"})
    url = served.ws_url(f"/api/workflows/runs/{run_id}/subscribe?token={served.token}")
    events = asyncio.run(ws_collect(url, lambda e: e["type"] == "completed"))
    assert [k for k in kinds(events) if k != "workflow_started"] == [
        "status:pending",
        "status:running",
        "step_started",
        "step_completed",
        "step_started",
        "step_completed",
        "step_started",
        "step_completed",
        "status:completed",
        "completed",
    ]
    assert [e["data"]["step"] for e in events if e["type"] == "step_completed"] == [
        "first",
        "second",
        "third",
    ]
    assert events[-1]["data"]["result"] == {"hello": "ws", "n": 3}
    assert all(e["executionId"] == run_id and e["workflow"] == "greet" for e in events)
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)


def test_subscribe_sees_a_detached_run_of_another_process_in_order(served: Served) -> None:
    """A workflow subscription (bearer header) sees a `ductape run --detach` from a separate process
    go pending → running → each step → completed, executed by serve's worker."""
    import httpx

    url = served.ws_url("/api/workflows/greet/subscribe")
    headers = served.headers()

    async def scenario() -> list[dict[str, Any]]:
        collecting = asyncio.ensure_future(
            ws_collect(url, lambda e: e["type"] in DONE, headers=headers, timeout=60)
        )
        while (await asyncio.to_thread(httpx.get, served.url + "/healthz")).json()[
            "subscriptions"
        ] < 1:
            await asyncio.sleep(0.02)  # the subscription is registered before the run exists
        done = await asyncio.to_thread(
            run_cli,
            served.project.root,
            "run",
            "greet",
            "--detach",
            "--workflow-id",
            "from-cli",
            "--input",
            '{"name": "cli"}',
        )
        assert done.returncode in (0, 5), done.stderr
        return await collecting

    events = asyncio.run(scenario())
    assert all(e["executionId"] == "from-cli" for e in events)
    sequence = [k for k in kinds(events) if k != "workflow_started"]
    assert sequence == [
        "status:pending",
        "status:running",
        "step_started",
        "step_completed",
        "step_started",
        "step_completed",
        "step_started",
        "step_completed",
        "status:completed",
        "completed",
    ], sequence
    assert events[-1]["data"]["result"]["hello"] == "cli"


def test_sse_resumes_after_a_cursor_without_gaps_or_repeats(served: Served) -> None:
    run_id = start(served, "greet")
    wait_status(served, run_id, {"completed"})
    path = f"/api/workflows/runs/{run_id}/subscribe"
    everything = sse_collect(served, path, lambda e: e["type"] == "completed")
    first_part = sse_collect(served, path, lambda e: e["type"] == "step_completed")
    cursor = first_part[-1]["id"]
    rest = sse_collect(served, f"{path}?since={cursor}", lambda e: e["type"] == "completed")
    assert [(e["id"], e["type"]) for e in first_part + rest] == [
        (e["id"], e["type"]) for e in everything
    ]
    by_header = sse_collect(
        served,
        path,
        lambda e: e["type"] == "completed",
        headers={**served.headers(), "Last-Event-ID": str(cursor)},
    )
    assert by_header == rest


def test_sse_token_in_query_is_accepted_on_subscribe_only_and_never_logged(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    import httpx

    caplog.set_level(logging.INFO, logger="ductape.server")
    run_id = start(served, "greet")
    path = f"/api/workflows/runs/{run_id}/subscribe?token={served.token}"
    events = sse_collect(served, path, lambda e: e["type"] == "completed", headers={})
    assert events[-1]["type"] == "completed"
    url = served.ws_url(f"/api/workflows/runs/{run_id}/subscribe?token={served.token}")
    asyncio.run(ws_collect(url, lambda e: e["type"] == "completed"))
    refused = httpx.get(f"{served.url}/api/workflows/runs/{run_id}?token={served.token}")
    assert refused.status_code == 401  # not a subscribe endpoint: the header is required
    time.sleep(0.2)
    assert f"/api/workflows/runs/{run_id}/subscribe" in caplog.text
    assert served.token not in caplog.text


def test_websocket_refusals_close_with_a_reason(served: Served) -> None:
    import websockets

    async def refusal(url: str) -> tuple[dict[str, Any], int | None]:
        async with websockets.connect(url) as socket:
            message = json.loads(await asyncio.wait_for(socket.recv(), 10))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(socket.recv(), 10)
            return message, socket.close_code

    message, code = asyncio.run(refusal(served.ws_url("/api/workflows/runs/x/subscribe")))
    assert message["error"]["code"] == "UNAUTHORIZED" and code == 4401
    message, code = asyncio.run(
        refusal(served.ws_url("/api/workflows/runs/wf_missing/subscribe?token=" + served.token))
    )
    assert message["error"]["code"] == "RUN_NOT_FOUND" and code == 4404
    message, code = asyncio.run(
        refusal(served.ws_url("/api/workflows/nope/subscribe?token=" + served.token))
    )
    assert message["error"]["code"] == "WORKFLOW_NOT_FOUND" and code == 4404
    message, code = asyncio.run(
        refusal(served.ws_url("/api/workflows/greet/subscribe?since=soon&token=" + served.token))
    )
    assert message["error"]["code"] == "INVALID_INPUT" and code == 4400


def test_sse_refusals_are_json_errors(served: Served) -> None:
    import httpx

    with httpx.Client(base_url=served.url, headers=served.headers()) as c:
        assert (
            c.get("/api/workflows/runs/wf_missing/subscribe").json()["error"]["code"]
            == "RUN_NOT_FOUND"
        )
        assert c.get("/api/workflows/greet/subscribe", params={"since": -1}).status_code == 422
    assert httpx.get(f"{served.url}/api/workflows/greet/subscribe").status_code == 401


def test_subscriptions_are_bounded_in_count(project: Any) -> None:
    import httpx
    import websockets

    from tests.server.conftest import TOKEN, WORKFLOWS, start_service

    project.write("flows", WORKFLOWS)
    service = start_service(project, max_subscriptions=2)
    base = f"127.0.0.1:{service.port}/api/workflows/greet/subscribe?token={TOKEN}"
    try:

        async def scenario() -> tuple[dict[str, Any], int | None, int]:
            async with websockets.connect("ws://" + base), websockets.connect("ws://" + base):
                await asyncio.sleep(0.3)
                async with websockets.connect("ws://" + base) as third:
                    message = json.loads(await asyncio.wait_for(third.recv(), 10))
                    with pytest.raises(websockets.ConnectionClosed):
                        await asyncio.wait_for(third.recv(), 10)
                    code = third.close_code
                sse = await asyncio.to_thread(httpx.get, "http://" + base)
                return message, code, sse.status_code

        message, code, sse_status = asyncio.run(scenario())
        assert (
            message["error"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
            and code == 4429
            and sse_status == 429
        )
        hub = service._server.config.app.state.hub  # type: ignore[union-attr]
        deadline = time.monotonic() + 10
        while hub.count and time.monotonic() < deadline:  # closed sockets release their slots
            time.sleep(0.05)
        assert hub.count == 0 and hub.by_tag == {} and hub.by_run == {}
    finally:
        service.stop()


def test_a_subscriber_that_falls_behind_is_told_where_to_resume() -> None:
    from ductape_cli.server.stream import Hub, Lagging

    class NoEngine:
        def feed_position(self) -> int:
            return 0

    async def scenario() -> int:
        hub = Hub(NoEngine(), max_subscriptions=5, queue_limit=3, poll_interval=1)  # type: ignore[arg-type]
        sub, live_from = hub.subscribe(tag="greet")
        stream = hub.events(sub, None, live_from)
        sub.offer([{"id": 1, "type": "x"}])
        assert (await stream.__anext__())["id"] == 1
        sub.offer(
            [
                {"id": 2, "type": "x"},
                {"id": 2, "type": "y"},
                {"id": 3, "type": "x"},
                {"id": 4, "type": "x"},
            ]
        )
        with pytest.raises(Lagging) as lag:
            await stream.__anext__()
        hub.unsubscribe(sub)
        assert hub.count == 0
        return lag.value.cursor

    assert asyncio.run(scenario()) == 1
