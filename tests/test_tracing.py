"""Traces through the OpenTelemetry SDK's in-memory exporter: one trace per run, spans for executions,
steps, waits, compensations and child runs, across executions and engines; and nothing when off."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.services import need_module

need_module("opentelemetry.sdk")

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402

from tests.conftest import REPO  # noqa: E402

FLOWS = """
    from ductape_cli import workflow

    ATTEMPTS = []

    def flaky():
        ATTEMPTS.append(1)
        if len(ATTEMPTS) == 1:
            raise RuntimeError("once")
        return "ok"

    def refund(_):
        return None

    @workflow("kid")
    async def kid(ctx):
        return await ctx.step("wrap", lambda: {"wrapped": ctx.input.item})

    @workflow("order", rollback_strategy="reverse_all")
    async def order(ctx):
        await ctx.step("charge", lambda: {"id": "ch_1"}, rollback=refund)
        await ctx.step("flaky", flaky, retries=1, retry_delay="1ms")
        await ctx.sleep("10ms")
        gift = await ctx.workflow("gift-" + ctx.workflow_id, "kid", {"item": "socks"})
        approval = await ctx.wait_for_signal("approve")
        if approval.get("reject"):
            await ctx.step("ship", lambda: 1 / 0)
        return gift
"""


@pytest.fixture
def traced(project):
    project.write("flows", FLOWS)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def engine():
        from ductape_cli.observe import tracing

        eng = project.engine()
        tracing.enable(eng, provider)
        return eng

    return engine, exporter


def by_name(spans) -> dict[str, list]:
    out: dict[str, list] = {}
    for span in spans:
        out.setdefault(span.name, []).append(span)
    return out


def test_a_run_is_one_trace_across_executions_engines_and_children(traced) -> None:
    make, exporter = traced
    first = make()
    started = first.run("order", {})
    assert started["status"] == "running"
    first.close()
    second = make()  # another engine (as another process would be) continues the run
    result = second.signal(started["workflow_id"], "approve", {"reject": True})
    assert result["status"] == "rolled_back"
    second.close()

    spans = exporter.get_finished_spans()
    assert (
        len({s.context.trace_id for s in spans}) == 1
    )  # every span, both executions, the child: one trace
    named = by_name(spans)
    run_span = named["run order"][0]
    assert (
        run_span.parent is None and run_span.attributes["ductape.run_id"] == started["workflow_id"]
    )
    executions = named["execute order"]
    assert len(executions) == 2 and all(
        e.parent.span_id == run_span.context.span_id for e in executions
    )
    first_exec, second_exec = sorted(executions, key=lambda s: s.start_time)
    assert (
        first_exec.attributes["ductape.first_execution"] is True
        and first_exec.attributes["ductape.status"] == "running"
    )
    assert (
        second_exec.attributes["ductape.status"] == "rolled_back"
        and second_exec.status.status_code == StatusCode.ERROR
    )

    charge = named["step charge"][0]
    assert charge.parent.span_id == first_exec.context.span_id
    flaky = named["step flaky"][0]
    assert [e.name for e in flaky.events] == ["retry"] and flaky.events[0].attributes[
        "ductape.error"
    ] == "once"
    ship = named["step ship"][0]
    assert (
        ship.parent.span_id == second_exec.context.span_id
        and ship.status.status_code == StatusCode.ERROR
    )

    sleep = named["wait sleep sleep"][0]
    assert sleep.parent.span_id == first_exec.context.span_id and sleep.end_time > sleep.start_time
    signal_wait = named["wait signal approve"][0]
    assert signal_wait.parent.span_id == second_exec.context.span_id
    assert signal_wait.start_time < second_exec.start_time  # it reaches back to when the wait began

    child_span = named["child kid"][0]
    assert child_span.parent.span_id == first_exec.context.span_id
    kid_run = named["run kid"][0]
    assert kid_run.parent.span_id == child_span.context.span_id
    kid_exec = named["execute kid"][0]
    assert kid_exec.parent.span_id == kid_run.context.span_id
    assert named["step wrap"][0].parent.span_id == kid_exec.context.span_id

    compensation = named["compensate charge"][0]
    assert (
        compensation.parent.span_id == second_exec.context.span_id
        and compensation.status.status_code != StatusCode.ERROR
    )


def test_a_detached_run_joins_the_trace_its_creation_started(traced) -> None:
    make, exporter = traced
    engine = make()
    run, _ = engine.start("kid", {"item": "hat"}, detach=True)
    assert "traceparent" in engine.get_run(run.id).options
    engine.drive(run.id)
    spans = by_name(exporter.get_finished_spans())
    assert spans["run kid"][0].attributes["ductape.queued"] is True
    assert spans["execute kid"][0].parent.span_id == spans["run kid"][0].context.span_id


def test_a_run_that_is_never_stored_leaves_no_open_span(traced) -> None:
    make, exporter = traced
    engine = make()
    first, created = engine.start("kid", {"item": "a"}, idempotency_key="k1")
    again, created_again = engine.start("kid", {"item": "a"}, idempotency_key="k1")
    assert created and not created_again and again.id == first.id
    tracer = engine.listeners[-1]
    assert list(tracer._runs) == [first.id]
    discarded = [s for s in exporter.get_finished_spans() if s.attributes.get("ductape.discarded")]
    assert len(discarded) == 1 and discarded[0].attributes["ductape.run_id"] != first.id


def test_runs_join_a_remote_trace(traced, monkeypatch) -> None:
    from ductape_cli.observe.tracing import parent_from

    make, exporter = traced
    engine = make()
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with parent_from(
        {"traceparent": f"00-{trace_id}-{span_id}-01"}
    ):  # what a server does with a request's headers
        engine.run("kid", {"item": "a"})
    monkeypatch.setenv("TRACEPARENT", f"00-{trace_id}-{'1' * 16}-01")  # what a CI job exports
    engine.run("kid", {"item": "b"})
    with parent_from({"traceparent": "garbage"}):
        loose = engine.run("kid", {"item": "c"})["workflow_id"]
    runs = [s for s in exporter.get_finished_spans() if s.name == "run kid"]
    assert [format(s.context.trace_id, "032x") for s in runs[:2]] == [trace_id, trace_id]
    assert [format(s.parent.span_id, "016x") for s in runs[:2]] == [span_id, "1" * 16]
    assert (
        runs[2].attributes["ductape.run_id"] == loose
        and format(runs[2].context.trace_id, "032x") == trace_id
    )  # TRACEPARENT still set


def test_no_tracing_without_configuration(project) -> None:
    engine = project.engine()
    assert engine.listeners == []
    code = (
        "import sys; from ductape_cli.engine.engine import Engine; from ductape_cli.config import load_config; "
        "Engine(load_config()); print(json.dumps(['opentelemetry' in sys.modules, 'prometheus_client' in sys.modules]))"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", "import json; " + code],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == [False, False], out.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"},
            False,
        ),
    ],
)
def test_configured_from_environment(env, expected) -> None:
    from ductape_cli.observe.tracing import configured

    assert configured(env) is expected


def test_console_exporter_configured_by_environment(project) -> None:
    """End to end through OTEL_* variables: `ductape run` exports its spans (to stderr, keeping --json clean)."""
    project.write("flows", FLOWS)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_SERVICE_NAME": "ci-job",
        "DUCTAPE_PROJECT": str(project.root),
    }
    out = subprocess.run(
        [sys.executable, "-m", "ductape_cli", "run", "kid", "--input", '{"item": "cap"}', "--json"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["output"] == {"wrapped": "cap"}
    assert '"name": "run kid"' in out.stderr and '"name": "step wrap"' in out.stderr
    assert '"service.name": "ci-job"' in out.stderr
