"""Durable waits, signals, queries, cancellation, hooks and custom events."""

from __future__ import annotations

import time

import pytest

from ductape_cli.errors import QueryFailed

APPROVAL = """
    from ductape_cli import workflow, SignalTimeout

    UNDONE = []

    @workflow(
        "approval",
        signals={
            "approved": {"approver_id": "string", "comments": "string?"},
            "rejected": {"approver_id": "string", "reason": "string"},
            "note": {"text": "string"},
        },
        queries={"progress": lambda ctx: {"done": ctx.completed_steps, "state": dict(ctx.state)}},
    )
    async def approval(ctx):
        request = await ctx.step("request", lambda: {"amount": ctx.input.amount}, lambda out: UNDONE.append("request"))
        ctx.set_state("phase", "waiting")
        decision = await ctx.wait_for_signal(["approved", "rejected"], timeout=ctx.input.timeout or "24h")
        if decision["_signal"] == "approved":
            paid = await ctx.step("pay", lambda: {"paid": request["amount"], "by": decision["approver_id"]})
            return {"status": "approved", "paid": paid}
        await ctx.step("notify", lambda: decision["reason"])
        return {"status": "rejected", "reason": decision["reason"]}

    @workflow("notes", signals={"note": {"text": "string"}})
    async def notes(ctx):
        first = await ctx.wait_for_signal("note")
        second = await ctx.wait_for_signal("note")
        return [first["text"], second["text"]]

    @workflow("timeouts", signals={"never": {}})
    async def timeouts(ctx):
        try:
            await ctx.wait_for_signal("never", timeout=50)
        except SignalTimeout:
            return "timed out"

    @workflow("uncaught-timeout", signals={"never": {}})
    async def uncaught(ctx):
        await ctx.step("prep", lambda: 1, lambda out: UNDONE.append("prep"))
        await ctx.wait_for_signal("never", timeout=50)

    @workflow("sleeper")
    async def sleeper(ctx):
        await ctx.step("before", lambda: 1)
        await ctx.sleep("1h")
        return await ctx.step("after", lambda: 2)

    @workflow("short-sleep")
    async def short_sleep(ctx):
        await ctx.sleep(30)
        await ctx.sleep("20ms")
        return "rested"
"""


@pytest.fixture
def flows(project):
    project.write("flows", APPROVAL)
    return project


def test_approval_flow_with_the_cli_alone(flows, cli) -> None:
    started = cli("run", "approval", "--input", '{"amount": 120}', "--json")
    assert started.exit_code == 5
    run_id = started.json()["workflow_id"]
    status = cli("status", run_id, "--json").json()
    assert status["waiting"]["signals"] == ["approved", "rejected"]
    assert status["waiting"]["deadline"] is not None
    assert "waiting for signal approved, rejected" in cli("status", run_id).stdout
    assert cli("query", run_id, "progress", "--json").json() == {
        "done": ["request"],
        "state": {"phase": "waiting"},
    }
    done = cli("signal", run_id, "approved", "--data", '{"approver_id": "mgr-1"}', "--json")
    assert done.exit_code == 0
    assert done.json()["output"] == {"status": "approved", "paid": {"paid": 120, "by": "mgr-1"}}


def test_rejection_path(flows, cli) -> None:
    run_id = cli("run", "approval", "--input", '{"amount": 5}', "--json").json()["workflow_id"]
    done = cli(
        "signal",
        run_id,
        "rejected",
        "--data",
        '{"approver_id": "m", "reason": "too much"}',
        "--json",
    )
    assert done.json()["output"] == {"status": "rejected", "reason": "too much"}


def test_signal_sent_before_the_wait_is_buffered_and_signals_keep_order(flows, cli) -> None:
    engine = flows.engine()
    run, _ = engine.start("notes", {}, detach=True)
    assert (
        cli("signal", run.id, "note", "--data", '{"text": "one"}', "--no-wait", "--json").exit_code
        == 5
    )
    assert (
        cli("signal", run.id, "note", "--data", '{"text": "two"}', "--no-wait", "--json").exit_code
        == 5
    )
    result = cli("resume", run.id, "--json").json()
    assert result["output"] == ["one", "two"]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("approve", "{}", "declares no signal 'approve'"),
        ("approved", "{}", "missing field 'approver_id'"),
        ("approved", '{"approver_id": 7}', "field 'approver_id' must be string, got int"),
        ("approved", "[1]", "expects a JSON object"),
        ("approved", "{oops", "not valid JSON"),
    ],
)
def test_bad_signals_are_refused_and_nothing_is_stored(flows, cli, name, data, message) -> None:
    run_id = cli("run", "approval", "--input", '{"amount": 1}', "--json").json()["workflow_id"]
    result = cli("signal", run_id, name, "--data", data)
    assert result.exit_code == 2 and message in result.stderr
    assert flows.engine().store.signals(run_id) == []


def test_signal_to_a_finished_run_is_refused_with_its_status(flows, cli) -> None:
    run_id = cli("run", "approval", "--input", '{"amount": 1}', "--json").json()["workflow_id"]
    cli("signal", run_id, "approved", "--data", '{"approver_id": "m"}')
    again = cli("signal", run_id, "approved", "--data", '{"approver_id": "m"}')
    assert again.exit_code == 2 and "already completed" in again.stderr


def test_signal_timeout_is_catchable_and_uncaught_fails_with_rollback(flows) -> None:
    engine = flows.engine()
    # A deadline within run's inline window is waited out in-process.
    assert engine.run("timeouts", {})["output"] == "timed out"
    failed = engine.run("uncaught-timeout", {})
    assert failed["status"] == "rolled_back" and failed["error"]["code"] == "SIGNAL_TIMEOUT"
    assert failed["rollback_result"]["rolled_back_steps"] == ["prep"]


def test_long_sleep_suspends_and_short_sleeps_run_inline(flows, cli) -> None:
    result = cli("run", "sleeper", "--json")
    assert result.exit_code == 5 and result.json()["waiting"]["kind"] == "sleep"
    assert "sleeping until" in cli("status", result.json()["workflow_id"]).stdout
    assert cli("run", "short-sleep", "--json").json()["output"] == "rested"


def test_sleep_that_already_elapsed_is_not_slept_again(flows, ductape_env) -> None:
    ductape_env.load(flows.root / "workflows" / "flows.py")
    run = ductape_env.start("sleeper", {})
    assert run.waiting["kind"] == "sleep"
    ductape_env.advance("1h")
    assert run.result()["output"] == 2
    assert [e["type"] for e in run.history("sleep_started", "sleep_completed")] == [
        "sleep_started",
        "sleep_completed",
    ]


def test_bad_sleep_duration_fails_clearly(project) -> None:
    project.write(
        "badsleep",
        """
        from ductape_cli import workflow

        @workflow("bad-sleep")
        async def bad(ctx):
            await ctx.sleep(ctx.input["how_long"])
    """,
    )
    result = project.engine().run("bad-sleep", {"how_long": "5 parsecs"})
    assert result["status"] == "failed"
    assert "invalid sleep duration '5 parsecs'" in result["error"]["message"]


def test_cancel_a_waiting_run_rolls_back(flows, cli) -> None:
    run_id = cli("run", "approval", "--input", '{"amount": 1}', "--json").json()["workflow_id"]
    result = cli("cancel", run_id, "--reason", "customer asked")
    assert result.exit_code == 4
    assert "cancelled: true" in result.stdout and "rolled_back_steps: request" in result.stdout
    status = cli("status", run_id, "--json").json()
    assert status["status"] == "cancelled" and status["error"]["code"] == "CANCELLED"
    again = cli("cancel", run_id)
    assert again.exit_code == 2 and "already cancelled" in again.stderr


def test_a_cancel_from_another_process_is_seen_by_the_lease_keepers_poll(
    project, monkeypatch
) -> None:
    """The owner learns of a cancel stored by another process when its lease keeper next reads the
    store (every CANCEL_POLL_EVERY): the slow step outlasts that, and the run stops after it."""
    from ductape_cli.engine import engine as engine_module

    monkeypatch.setattr(engine_module, "cancel_in_process", lambda run_id, reason: None)
    project.write(
        "long",
        """
        import time
        from ductape_cli import workflow
        UNDONE = []

        @workflow("long")
        def long(ctx):
            ctx.step("a", lambda: 1, lambda out: UNDONE.append("a"))
            ctx.step("slow", lambda: time.sleep(1.0) or 2)
            ctx.step("never", lambda: 3)
    """,
    )
    import threading

    engine = project.engine()
    run, _ = engine.start("long", {})
    results = {}
    worker = threading.Thread(target=lambda: results.setdefault("r", engine.drive(run.id)))
    worker.start()
    time.sleep(0.3)
    other = project.engine()
    cancelled = other.cancel(run.id, "stop it")
    worker.join()
    assert cancelled["status"] == "cancelled"
    assert cancelled["rolled_back_steps"] == ["a"]
    assert "never" not in results["r"]["completed_steps"]


def test_a_cancel_from_this_process_stops_a_running_run_at_its_next_boundary(
    project, gates
) -> None:
    """Another engine of this process (serve's API beside its worker) tells the executing engine at
    once: the step in flight ends, the run stops after it, without waiting for the keeper's poll."""
    project.write(
        "long",
        """
        from ductape_cli import workflow
        from tests.gates import gate
        UNDONE = []

        def slow():
            gate("slow started").set()
            return gate("slow may end").wait(30) and 2

        @workflow("long")
        def long(ctx):
            ctx.step("a", lambda: 1, lambda out: UNDONE.append("a"))
            ctx.step("slow", slow)
            ctx.step("never", lambda: 3)
    """,
    )
    import threading

    from ductape_cli.config import load_config
    from ductape_cli.engine.clock import SystemClock
    from ductape_cli.engine.engine import Engine

    class Watched(SystemClock):
        def block(self, seconds: float) -> None:
            gates("canceller waits").set()  # cancel() stored the request and told this process
            super().block(seconds)

    engine = project.engine()
    run, _ = engine.start("long", {})
    results = {}
    worker = threading.Thread(target=lambda: results.setdefault("r", engine.drive(run.id)))
    worker.start()
    assert gates("slow started").wait(30)
    other = Engine(load_config(project.root), clock=Watched())
    canceller = threading.Thread(
        target=lambda: results.setdefault("c", other.cancel(run.id, "stop it"))
    )
    canceller.start()
    assert gates("canceller waits").wait(30)
    gates("slow may end").set()
    worker.join()
    canceller.join()
    assert results["c"]["status"] == "cancelled"
    assert results["c"]["rolled_back_steps"] == ["a"]
    # Without the word from this process the step would end before the keeper's next poll, and
    # "never" would run.
    assert "never" not in results["r"]["completed_steps"]


def test_hooks_are_single_use_and_custom_events_are_listed(project, cli) -> None:
    project.write(
        "hooks",
        """
        from ductape_cli import workflow

        @workflow("doc-approval")
        async def doc(ctx):
            hook = await ctx.create_hook("document-approval", {"documentId": ctx.input.doc})
            await ctx.step("announce", lambda: hook.token)
            ctx.emit_event("hook-created", {"doc": ctx.input.doc})
            approval = await hook.wait()
            ctx.emit_event("approved", approval)
            return {"approved": approval["approved"]}
    """,
    )
    run_id = cli("run", "doc-approval", "--input", '{"doc": "d1"}', "--json").json()["workflow_id"]
    status = cli("status", run_id, "--json").json()
    assert status["waiting"]["kind"] == "hook"
    token = cli("step", run_id, "announce", "--json").json()["output"]
    assert len(token) > 20 and token.startswith(
        "hk_"
    )  # a token never reads as a command-line option
    done = cli("hook", token, "--data", '{"approved": true}', "--json")
    assert done.exit_code == 0 and done.json()["output"] == {"approved": True}
    reused = cli("hook", token, "--data", "{}")
    assert reused.exit_code == 2 and "already used" in reused.stderr
    unknown = cli("hook", "not-a-token")
    assert unknown.exit_code == 2 and "unknown hook token" in unknown.stderr
    events = cli("events", run_id, "--json").json()
    assert [e["type"] for e in events] == ["hook-created", "approved"]
    assert (
        cli("events", run_id, "--type", "approved", "--json").json()[0]["payload"]["approved"]
        is True
    )


def test_query_on_finished_runs_and_unknown_query(flows, cli) -> None:
    run_id = cli("run", "approval", "--input", '{"amount": 1}', "--json").json()["workflow_id"]
    cli("signal", run_id, "approved", "--data", '{"approver_id": "m"}')
    assert cli("query", run_id, "progress", "--json").json()["done"] == ["request", "pay"]
    bad = cli("query", run_id, "nope")
    assert bad.exit_code == 2 and "has no query 'nope'" in bad.stderr


def test_query_cannot_write(project) -> None:
    project.write(
        "q",
        """
        from ductape_cli import workflow

        def sneaky(ctx):
            ctx.state["x"] = 1

        @workflow("q", queries={"sneaky": sneaky})
        async def q(ctx):
            await ctx.wait_for_signal("go")
    """,
    )
    engine = project.engine()
    run_id = engine.run("q", {})["workflow_id"]
    with pytest.raises(QueryFailed, match="query 'sneaky' .* raised TypeError"):
        engine.query(run_id, "sneaky")
    assert engine.status(run_id)["state"] == {}


def test_status_shows_the_step_in_flight(project, gates) -> None:
    project.write(
        "inflight",
        """
        from ductape_cli import workflow
        from tests.gates import gate

        @workflow("inflight")
        def inflight(ctx):
            ctx.step("quick", lambda: 1)
            ctx.step("slow", lambda: gate("slow may end").wait(30) and 2)
    """,
    )
    import threading

    engine = project.engine()
    run, _ = engine.start("inflight", {})
    worker = threading.Thread(target=lambda: engine.drive(run.id))
    worker.start()
    try:
        deadline = time.monotonic() + 5
        steps: list = []
        while time.monotonic() < deadline:
            steps = project.engine().status(run.id)["steps"]
            if any(s["tag"] == "slow" and s["status"] == "running" for s in steps):
                break
            time.sleep(0.01)
        assert [(s["tag"], s["status"]) for s in steps] == [
            ("quick", "completed"),
            ("slow", "running"),
        ]
    finally:
        gates("slow may end").set()
        worker.join()
