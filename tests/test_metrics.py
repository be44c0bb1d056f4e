"""Metrics in-process: the listener's counts, the queue gauges, and the ASGI app a server mounts."""

from __future__ import annotations

import asyncio

import pytest

from tests.services import need_module

need_module("prometheus_client")

from tests.process.test_operations import sample  # noqa: E402

FLOWS = """
    from ductape_cli import workflow

    def undo(_):
        raise RuntimeError("cannot undo")

    @workflow("pay", rollback_strategy="reverse_all")
    async def pay(ctx):
        await ctx.step("hold", lambda: 1, rollback=undo)
        if ctx.input.fail:
            await ctx.step("capture", lambda: 1 / 0, retries=2, retry_delay="1ms")
        if ctx.input.wait:
            await ctx.wait_for_signal("go")
        return "ok"
"""


@pytest.fixture
def metered(project):
    from ductape_cli.observe import metrics

    project.write("flows", FLOWS)
    engine = project.engine()
    return engine, metrics.enable(engine)


def test_counts_follow_the_runs(metered) -> None:
    engine, metrics = metered
    assert engine.run("pay", {})["status"] == "completed"
    assert engine.run("pay", {"fail": True})["status"] == "failed"  # its compensation fails too
    waiting = engine.run("pay", {"wait": True})["workflow_id"]
    engine.start("pay", {}, detach=True)
    text = metrics.exposition().decode()
    assert sample(text, "ductape_runs_started_total", workflow="pay") == 3
    assert sample(text, "ductape_runs_ended_total", workflow="pay", status="completed") == 1
    assert sample(text, "ductape_runs_ended_total", workflow="pay", status="failed") == 1
    assert sample(text, "ductape_step_retries_total", workflow="pay") == 2
    assert (
        sample(text, "ductape_step_duration_seconds_count", workflow="pay", status="completed") == 3
    )
    assert sample(text, "ductape_step_duration_seconds_count", workflow="pay", status="failed") == 1
    assert sample(text, "ductape_compensations_total", workflow="pay", status="failed") == 1
    assert sample(text, "ductape_runs", state="waiting") == 1
    assert sample(text, "ductape_queue_depth") == 1  # the detached run, due now, held by nobody
    engine.signal(waiting, "go", {})
    text = metrics.exposition().decode()
    assert sample(text, "ductape_runs", state="waiting") == 0
    assert sample(text, "ductape_runs_ended_total", workflow="pay", status="completed") == 2


def test_enable_is_idempotent_and_costs_nothing_until_asked(project) -> None:
    from ductape_cli.observe import metrics

    engine = project.engine()
    assert engine.listeners == []
    first = metrics.enable(engine)
    assert metrics.enable(engine) is first and engine.listeners == [first]


def test_the_asgi_app_answers_scrapes(metered) -> None:
    import httpx

    from ductape_cli.observe.metrics import asgi_app

    engine, _ = metered
    engine.run("pay", {})
    app = asgi_app(engine)

    async def scrape() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ductape"
        ) as client:
            return await client.get("/")

    response = asyncio.run(scrape())
    assert response.status_code == 200
    assert (
        sample(response.text, "ductape_runs_ended_total", workflow="pay", status="completed") == 1
    )


def test_a_taken_metrics_port_is_one_clear_line(project, cli) -> None:
    import socket

    project.write("flows", FLOWS)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("worker", "--once", "--metrics-port", str(port))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"ductape: cannot serve metrics on 127.0.0.1:{port}: ")
