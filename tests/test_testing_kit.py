"""The testing kit: virtual time, run handles, mocks, rollback assertions, the replay check, the plugin.

Run with the plugin loaded: ``pytest -p ductape_cli.testing.plugin`` (or
installed through its `pytest11` entry point).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from ductape_cli import SignalTimeout, define, workflow
from ductape_cli.testing import VirtualClock, WorkflowStillWaiting, WorkflowTestEnv

HOUR, DAY = 3600.0, 86400.0

UNDONE: list[str] = []


def undo(tag: str) -> Any:
    return lambda output: UNDONE.append(tag)


@pytest.fixture(autouse=True)
def _forget_undone() -> None:
    UNDONE.clear()


@workflow("day-then-approval", signals={"approved": {"by": "string"}})
async def day_then_approval(ctx: Any) -> Any:
    await ctx.step("request", lambda: {"requested": ctx.input.amount}, undo("request"))
    await ctx.sleep("1d")
    try:
        decision = await ctx.wait_for_signal("approved", timeout="48h")
    except SignalTimeout:
        return {"approved": False}
    return {"approved": True, "by": decision["by"]}


@pytest.fixture
def env(ductape_env: WorkflowTestEnv) -> WorkflowTestEnv:
    ductape_env.register(day_then_approval)
    return ductape_env


# -- virtual time ---------------------------------------------------------------------------------


def test_a_day_of_sleep_then_a_48h_signal_wait_take_no_wall_time(env: WorkflowTestEnv) -> None:
    wall = time.perf_counter()
    t0 = env.clock.now()

    signalled = env.start("day-then-approval", {"amount": 10})
    assert signalled.waiting["kind"] == "sleep"
    env.advance("1d")
    assert signalled.waiting["kind"] == "signal" and signalled.waiting["signals"] == ["approved"]
    assert signalled.signal("approved", {"by": "mgr-1"})["status"] == "completed"
    assert signalled.result()["output"] == {"approved": True, "by": "mgr-1"}
    assert env.clock.now() - t0 == pytest.approx(DAY, abs=1)

    ignored = env.run("day-then-approval", {"amount": 20})
    assert ignored.result()["output"] == {"approved": False}
    assert env.clock.now() - t0 == pytest.approx(DAY + 3 * DAY, abs=1)  # its own day of sleep + 48h
    assert [e["type"] for e in ignored.history("sleep_completed", "signal_timed_out")] == [
        "sleep_completed",
        "signal_timed_out",
    ]

    assert time.perf_counter() - wall < 0.5


def test_a_signal_sent_before_the_wait_is_consumed_when_time_skips_to_it(
    env: WorkflowTestEnv,
) -> None:
    run = env.start("day-then-approval", {"amount": 1})
    run.signal("approved", {"by": "early"})
    assert run.status == "running"
    assert run.result()["output"] == {"approved": True, "by": "early"}


@pytest.mark.ductape(auto_skip=False)
def test_without_auto_skip_time_moves_only_with_advance(env: WorkflowTestEnv) -> None:
    run = env.start("day-then-approval", {"amount": 1})
    with pytest.raises(WorkflowStillWaiting, match="sleeping until .*env.advance"):
        run.result()
    env.advance("23h")
    assert run.waiting["kind"] == "sleep"
    env.advance("1h")
    assert run.waiting["kind"] == "signal"
    env.advance("47h")
    assert run.status == "running"
    env.advance("1h")
    assert run.result()["output"] == {"approved": False}


def test_auto_skip_stops_at_a_signal_wait_without_a_deadline(ductape_env: WorkflowTestEnv) -> None:
    @workflow("forever", signals={"go": {}})
    async def forever(ctx: Any) -> Any:
        await ctx.sleep("2h")
        return await ctx.wait_for_signal("go")

    ductape_env.register(forever)
    run = ductape_env.run("forever")
    assert run.waiting["kind"] == "signal" and run.waiting["deadline"] is None
    with pytest.raises(
        WorkflowStillWaiting, match="waiting for signal go; send it with handle.signal"
    ):
        run.result()
    run.signal("go", {"n": 1})
    assert run.result()["output"] == {"n": 1}


def test_retry_delay_of_an_hour_passes_instantly(ductape_env: WorkflowTestEnv) -> None:
    @workflow("flaky")
    async def flaky(ctx: Any) -> Any:
        return await ctx.step("call", lambda: "ok", retries=3, retry_delay="1h", backoff=2)

    ductape_env.register(flaky)
    mock = ductape_env.mock_step("call", raises=ConnectionError("down"), times=2)
    t0, wall = ductape_env.clock.now(), time.perf_counter()
    run = ductape_env.run("flaky")
    assert run.result()["output"] == "ok"
    assert mock.call_count == 3 and run.steps["call"]["attempts"] == 3
    assert [a["error"]["message"] for a in run.step("call")["attempt_log"][:2]] == ["down", "down"]
    assert ductape_env.clock.now() - t0 == pytest.approx(3 * HOUR, abs=1)  # 1h, then 2h (backoff)
    assert time.perf_counter() - wall < 0.5


def test_workflow_timeout_of_a_day_fires_while_sleeping_and_rolls_back(
    ductape_env: WorkflowTestEnv,
) -> None:
    @workflow("slowpoke", timeout="1d")
    async def slowpoke(ctx: Any) -> Any:
        await ctx.step("hold", lambda: 1, undo("hold"))
        await ctx.sleep("2d")

    ductape_env.register(slowpoke)
    t0 = ductape_env.clock.now()
    run = ductape_env.run("slowpoke")
    run.assert_status("rolled_back")
    assert run.error["code"] == "TIMEOUT" and UNDONE == ["hold"]
    assert ductape_env.clock.now() - t0 == pytest.approx(DAY, abs=1)


def test_workflow_timeout_interrupts_hourly_retries_on_the_virtual_clock(
    ductape_env: WorkflowTestEnv,
) -> None:
    @workflow("stubborn", timeout="1d")
    async def stubborn(ctx: Any) -> Any:
        await ctx.step("call", lambda: 1 / 0, retries=1000, retry_delay="1h")

    ductape_env.register(stubborn)
    t0 = ductape_env.clock.now()
    run = ductape_env.run("stubborn")
    run.assert_status("failed")
    assert run.error["code"] == "TIMEOUT"
    assert DAY <= ductape_env.clock.now() - t0 <= DAY + HOUR


def test_an_uncaught_signal_timeout_fails_the_run_after_its_timeout(
    ductape_env: WorkflowTestEnv,
) -> None:
    @workflow("needs-ok", signals={"ok": {}}, rollback_strategy="reverse_all")
    async def needs_ok(ctx: Any) -> Any:
        await ctx.step("prepare", lambda: 1, undo("prepare"))
        await ctx.wait_for_signal("ok", timeout="6h")

    ductape_env.register(needs_ok)
    t0 = ductape_env.clock.now()
    run = ductape_env.run("needs-ok")
    run.assert_status("rolled_back")
    assert run.error["code"] == "SIGNAL_TIMEOUT"
    run.assert_rolled_back("prepare")
    assert ductape_env.clock.now() - t0 == pytest.approx(6 * HOUR, abs=1)


def test_parallel_retry_delays_overlap_instead_of_adding_up(ductape_env: WorkflowTestEnv) -> None:
    @workflow("fan-out")
    async def fan_out(ctx: Any) -> Any:
        calls = [
            ctx.step(f"call-{i}", lambda i=i: i, retries=1, retry_delay="1h") for i in range(3)
        ]
        return await ctx.parallel(calls)

    ductape_env.register(fan_out)
    ductape_env.mock_step("call-*", raises=TimeoutError, times=3)
    t0 = ductape_env.clock.now()
    assert ductape_env.run("fan-out").result()["output"] == [0, 1, 2]
    assert ductape_env.clock.now() - t0 == pytest.approx(HOUR, abs=1)


def test_child_workflow_timers_are_skipped_for_the_parent(ductape_env: WorkflowTestEnv) -> None:
    @workflow("nap")
    async def nap(ctx: Any) -> Any:
        await ctx.sleep("3h")
        return "rested"

    @workflow("parent")
    async def parent(ctx: Any) -> Any:
        return {"child": await ctx.workflow("nap-1", "nap")}

    ductape_env.register(nap, parent)
    run = ductape_env.run("parent")
    assert run.result()["output"] == {"child": "rested"}
    assert ductape_env.handle("nap-1").status == "completed"


def test_plain_def_handlers_sleep_on_the_virtual_clock_too(ductape_env: WorkflowTestEnv) -> None:
    def sync_flow(ctx: Any) -> Any:
        ctx.sleep("12h")
        return ctx.step("after", lambda: ctx.now().isoformat())

    ductape_env.register(define(tag="sync-flow", handler=sync_flow))
    t0 = ductape_env.now()
    output = ductape_env.run("sync-flow").result()["output"]
    assert (datetime.fromisoformat(output) - t0).total_seconds() == pytest.approx(12 * HOUR, abs=1)


def test_cron_schedules_fire_as_time_advances(ductape_env: WorkflowTestEnv) -> None:
    @workflow("nightly")
    async def nightly(ctx: Any) -> Any:
        return await ctx.step("report", lambda: ctx.input.kind)

    ductape_env.register(nightly)
    ductape_env.schedule("nightly", {"kind": "sales"}, cron="0 2 * * *", timezone="UTC")
    ductape_env.advance("3d")
    runs = ductape_env.runs("nightly")
    assert len(runs) == 3 and {r.status for r in runs} == {"completed"}
    assert [r.output for r in runs] == ["sales"] * 3


def test_run_until_idle_lets_every_timer_pass(env: WorkflowTestEnv) -> None:
    first, second = (
        env.start("day-then-approval", {"amount": 1}),
        env.start("day-then-approval", {"amount": 2}),
    )
    second.signal("approved", {"by": "early"})
    t0 = env.clock.now()
    env.run_until_idle()
    assert (first.output, second.output) == ({"approved": False}, {"approved": True, "by": "early"})
    assert env.clock.now() - t0 == pytest.approx(3 * DAY, abs=1)


def test_virtual_clock_on_its_own() -> None:
    clock = VirtualClock("2026-01-01T00:00:00Z")
    start = clock.now()
    clock.block(30)
    assert clock.now() == start + 30
    clock.advance_to(start)  # never backwards
    assert clock.now() == start + 30
    fired: list[str] = []

    import asyncio

    async def main() -> None:
        loop = asyncio.get_running_loop()
        clock.call_later(loop, 60, fired.append, "late")
        timer = clock.call_later(loop, 10, fired.append, "cancelled")
        timer.cancel()
        await clock.sleep(120)
        await asyncio.sleep(0)

    asyncio.run(main())
    assert fired == ["late"] and clock.now() == start + 150


# -- handles, queries, cancel -----------------------------------------------------------------------


@pytest.mark.ductape(store="file")
def test_handle_query_cancel_history_and_steps(ductape_env: WorkflowTestEnv) -> None:
    @workflow("trip", queries={"booked": lambda ctx: list(ctx.completed_steps)})
    async def trip(ctx: Any) -> Any:
        await ctx.step("flight", lambda: {"pnr": "F1"}, undo("flight"))
        await ctx.step("hotel", lambda: {"ref": "H1"}, undo("hotel"))
        await ctx.sleep("7d")
        await ctx.step("pay", lambda: 1)

    ductape_env.register(trip)
    run = ductape_env.start("trip")
    assert run.query("booked") == ["flight", "hotel"]
    assert run.steps["flight"]["output"] == {"pnr": "F1"} and "pay" not in run.steps
    cancelled = run.cancel("customer changed plans")
    assert cancelled["cancelled"] is True
    run.assert_status("cancelled")
    run.assert_rolled_back("hotel", "flight")
    assert run.steps["hotel"]["status"] == "rolled_back" and UNDONE == ["hotel", "flight"]
    assert "cancel_requested" in [e["type"] for e in run.history()]


# -- mocks and rollback ---------------------------------------------------------------------------------


def _shop(strategy: str) -> Any:
    async def shop(ctx: Any) -> Any:
        await ctx.step("reserve", lambda: "r1", undo("reserve"))
        await ctx.step("charge", lambda: "c1", undo("charge"), critical=True)
        await ctx.checkpoint("charged")
        await ctx.step("ship", lambda: "s1", undo("ship"))
        await ctx.step("notify", lambda: "sent")
        return "done"

    return define(tag=f"shop-{strategy}", handler=shop, rollback_strategy=strategy)


@pytest.mark.parametrize(
    ("strategy", "status", "rolled_back"),
    [
        ("reverse_all", "rolled_back", ["ship", "charge", "reserve"]),
        ("critical_only", "rolled_back", ["charge"]),
        ("to_checkpoint", "rolled_back", ["ship"]),
        ("none", "failed", []),
    ],
)
def test_a_mocked_step_failure_rolls_back_as_the_strategy_says(
    ductape_env: WorkflowTestEnv, strategy: str, status: str, rolled_back: list[str]
) -> None:
    ductape_env.register(_shop(strategy))
    mock = ductape_env.mock_step("notify", raises=RuntimeError("smtp down"))
    run = ductape_env.run(f"shop-{strategy}")
    run.assert_status(status)
    run.assert_rolled_back(*rolled_back)
    assert UNDONE == rolled_back  # the real compensations ran, newest first
    assert run.error == {"message": "smtp down", "step": "notify", "code": "STEP_FAILED"}
    assert run.steps["notify"]["status"] == "failed" and mock.call_count == 1
    kept = [t for t in ("reserve", "charge", "ship") if t not in rolled_back]
    run.assert_not_rolled_back(*kept)
    assert {t: run.steps[t]["status"] for t in kept} == dict.fromkeys(kept, "completed")


def test_mock_step_output_fn_and_patterns(ductape_env: WorkflowTestEnv) -> None:
    @workflow("batch")
    async def batch(ctx: Any) -> Any:
        total = 0
        for item in ctx.input["items"]:
            total += await ctx.step(f"price-{item}", lambda: 1 / 0, input={"sku": item})
        rate = await ctx.step("fx-rate", lambda: 1 / 0)
        return total * rate

    ductape_env.register(batch)
    prices = ductape_env.mock_step("price-*", fn=lambda payload: len(payload["sku"]))
    ductape_env.mock_step("fx-rate", output=2)
    assert ductape_env.run("batch", {"items": ["ab", "cde"]}).result()["output"] == 10
    assert prices.calls == [{"sku": "ab"}, {"sku": "cde"}]


@pytest.mark.ductape(real_components=False)
def test_the_sample_order_workflow_refunds_when_inventory_fails(
    ductape_env: WorkflowTestEnv,
) -> None:
    # The fixture found the repository's own ductape.toml and workflows/; no service is called.
    from ductape_cli.components import ActionError

    ductape_env.mock_action(
        "inventory-api", "check-availability", output={"available": True, "missing": []}
    )
    ductape_env.mock_action("payments", "create-charge", output={"id": "ch_1", "amount": 30})
    ductape_env.mock_action(
        "inventory-api", "reserve", raises=ActionError("out of stock", status_code=409)
    )
    refund = ductape_env.mock_action("payments", "refund", output={"refunded": "ch_1"})
    run = ductape_env.run(
        "order-fulfillment", {"orderId": "o2", "customerId": "c1", "items": ["sku-1"], "amount": 30}
    )
    run.assert_status("rolled_back")
    run.assert_rolled_back("process-payment")
    assert run.error["step"] == "reserve-inventory"
    assert refund.calls == [
        {"app": "payments", "event": "refund", "input": {"params": {"id": "ch_1"}}}
    ]


@pytest.mark.ductape(real_components=False)
def test_an_unmocked_component_call_fails_its_step_when_real_calls_are_off(
    ductape_env: WorkflowTestEnv,
) -> None:
    run = ductape_env.run(
        "order-fulfillment", {"orderId": "o3", "customerId": "c1", "items": ["sku-1"], "amount": 1}
    )
    run.assert_status("failed")
    assert "action:inventory-api:check-availability is not mocked" in run.error["message"]


COMPONENT_CONFIG = """\
[project]
name = "kit-test"
workflows = "workflows"

[envs.dev]
active = true

[apps.inventory-api]
base_url = "http://127.0.0.1:9"
headers = { Authorization = "Bearer ${INVENTORY_TOKEN:-unset}" }
[apps.inventory-api.events.check-availability]
method = "POST"
path = "/availability"
"""

COMPONENT_FLOWS = """
    from ductape_cli import workflow
    from ductape_cli.components import ActionError

    @workflow("stock-check")
    async def stock_check(ctx):
        try:
            found = await ctx.action.run(app="inventory-api", event="check-availability", input={"body": {"sku": ctx.input.sku}})
        except ActionError as exc:
            return {"error": exc.status_code}
        return {"available": found["available"]}
"""


def test_mock_action_answers_without_the_service_and_is_journaled_as_a_step(project: Any) -> None:
    from ductape_cli.components import ActionError

    (project.root / "ductape.toml").write_text(COMPONENT_CONFIG, encoding="utf-8")
    project.write("stock", COMPONENT_FLOWS)
    with WorkflowTestEnv(project.root) as env:
        mock = env.mock_action("inventory-api", "check-availability", output={"available": True})
        run = env.run("stock-check", {"sku": "a-1"})
        assert run.result()["output"] == {"available": True}
        assert run.steps["action:inventory-api:check-availability"]["status"] == "completed"
        assert mock.calls == [
            {
                "app": "inventory-api",
                "event": "check-availability",
                "input": {"body": {"sku": "a-1"}},
            }
        ]

        env.mock_action(
            "inventory-api", "check-availability", raises=ActionError("busy", status_code=503)
        )
        assert env.run("stock-check", {"sku": "a-2"}).result()["output"] == {"error": 503}


# -- the replay check ------------------------------------------------------------------------------------

PAYOUT_V1 = """
    from ductape_cli import workflow

    @workflow("payout", signals={"approved": {}})
    async def payout(ctx):
        await ctx.step("reserve", lambda: {"held": ctx.input.amount})
        await ctx.wait_for_signal("approved", timeout="7d")
        await ctx.step("pay", lambda: {"paid": ctx.input.amount})
        return "paid"
"""

# A step inserted in the middle: runs recorded before it now meet it where the journal holds the wait.
PAYOUT_INCOMPATIBLE = PAYOUT_V1.replace(
    '        await ctx.wait_for_signal("approved"',
    '        await ctx.step("fraud-check", lambda: "clean")\n        await ctx.wait_for_signal("approved"',
)

# The same change behind ctx.patched: old journals keep the old path, new runs take the new one.
PAYOUT_PATCHED = PAYOUT_V1.replace(
    '        await ctx.wait_for_signal("approved"',
    '        if ctx.patched("fraud-check"):\n            await ctx.step("fraud-check", lambda: "clean")\n'
    '        await ctx.wait_for_signal("approved"',
)

# The last step removed: a run waiting for approval would now end without paying.
PAYOUT_TRUNCATED = PAYOUT_V1.replace(
    '        await ctx.step("pay", lambda: {"paid": ctx.input.amount})\n', ""
)


def test_a_recorded_journal_fails_replay_after_an_incompatible_edit_and_passes_with_patched(
    project: Any, cli: Any, ductape_env: WorkflowTestEnv, tmp_path: Path
) -> None:
    module = project.write("payout", PAYOUT_V1)
    waiting_id = cli("run", "payout", "--input", '{"amount": 5}', "--json").json()["workflow_id"]
    done_id = cli("run", "payout", "--input", '{"amount": 7}', "--json").json()["workflow_id"]
    assert cli("signal", done_id, "approved", "--data", "{}").exit_code == 0
    files = {}
    for name, run_id in (("waiting", waiting_id), ("done", done_id)):
        exported = cli("history", run_id, "--json")
        assert exported.exit_code == 0
        assert {"workflow_id", "workflow_tag", "status", "events", "journal"} <= set(
            exported.json()
        )
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(exported.stdout, encoding="utf-8")

    ductape_env.load(module)
    for path in files.values():
        ductape_env.replay_history(path).assert_ok()

    module.write_text(textwrap.dedent(PAYOUT_INCOMPATIBLE), encoding="utf-8")
    ductape_env.load(module)
    for path in files.values():
        report = ductape_env.replay_history(path)
        assert not report.ok
        assert report.mismatch is not None
        assert report.mismatch["reason"] == "diverged" and report.mismatch["position"] == 1
        assert (
            report.mismatch["expected"]["kind"] == "signal"
            and report.mismatch["expected"]["tag"] == "approved"
        )
        assert report.mismatch["found"] == {
            "kind": "step",
            "tag": "fraud-check",
            "source": f"{module}:7",
        }
        with pytest.raises(AssertionError, match="replay diverged at position 1"):
            report.assert_ok()

    module.write_text(textwrap.dedent(PAYOUT_PATCHED), encoding="utf-8")
    ductape_env.load(module)
    for path in files.values():
        report = ductape_env.replay_history(path)
        assert report.ok, report
        assert report.replayed == report.journal_length
    # A run started on the patched code records the patch, and replays against it too.
    fresh = ductape_env.start("payout", {"amount": 9})
    assert [row["kind"] for row in fresh.journal] == ["step", "patch", "step", "signal"]
    assert ductape_env.replay_history(fresh.export()).ok
    assert ductape_env.replay_history(fresh.id).ok


def test_replay_reports_code_that_ends_before_the_journal_does(
    ductape_env: WorkflowTestEnv, project: Any
) -> None:
    module = project.write("payout", PAYOUT_V1)
    ductape_env.load(module)
    run = ductape_env.start("payout", {"amount": 3})
    run.signal("approved", {})
    recorded = run.export()
    assert [row["tag"] for row in recorded["journal"]] == ["reserve", "approved", "pay"]

    module.write_text(textwrap.dedent(PAYOUT_TRUNCATED), encoding="utf-8")
    ductape_env.load(module)
    report = ductape_env.replay_history(json.dumps(recorded))
    assert not report.ok and report.mismatch is not None
    assert report.mismatch["reason"] == "missing" and report.mismatch["position"] == 2
    assert (
        "the code now returns before position 2, where the journal holds step 'pay'"
        in report.mismatch["message"]
    )


def test_replay_accepts_code_that_goes_on_past_the_journal(
    ductape_env: WorkflowTestEnv, project: Any
) -> None:
    module = project.write("payout", PAYOUT_V1)
    ductape_env.load(module)
    waiting = ductape_env.start("payout", {"amount": 3})
    waiting_history = waiting.export()
    waiting.signal("approved", {})
    done_history = waiting.export()

    module.write_text(
        textwrap.dedent(
            PAYOUT_V1.replace(
                'return "paid"', 'await ctx.step("receipt", lambda: 1)\n        return "paid"'
            )
        ),
        encoding="utf-8",
    )
    ductape_env.load(module)
    stopped = ductape_env.replay_history(waiting_history)
    assert (
        stopped.ok
        and stopped.outcome == "the replay reached where the recorded run stopped"
        and stopped.extends is None
    )
    extended = ductape_env.replay_history(done_history)
    assert extended.ok and extended.replayed == 3
    assert extended.extends is not None and (extended.extends["kind"], extended.extends["tag"]) == (
        "step",
        "receipt",
    )
    assert "the code goes on with step 'receipt'" in str(extended)


def test_replay_needs_a_journal(ductape_env: WorkflowTestEnv) -> None:
    from ductape_cli.errors import InvalidInput

    with pytest.raises(InvalidInput, match="has no journal"):
        ductape_env.replay_history({"workflow_id": "wf_1", "workflow_tag": "x", "events": []})


# -- the plugin in a user's project ---------------------------------------------------------------------


def test_the_plugin_finds_the_project_above_the_tests(tmp_path: Path) -> None:
    (tmp_path / "ductape.toml").write_text(
        '[project]\nname = "shop"\nworkflows = "flows"\n', encoding="utf-8"
    )
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "greet.py").write_text(
        textwrap.dedent("""
        from ductape_cli import workflow

        @workflow("greet")
        async def greet(ctx):
            await ctx.sleep("30d")
            return await ctx.step("hello", lambda: f"hello {ctx.input.name}")
    """),
        encoding="utf-8",
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_greet.py").write_text(
        textwrap.dedent("""
        import pytest

        def test_greet(ductape_env):
            assert ductape_env.run("greet", {"name": "ada"}).result()["output"] == "hello ada"

        @pytest.mark.ductape(auto_skip=False, start="2030-01-01T00:00:00Z")
        def test_manual_clock(ductape_env):
            run = ductape_env.start("greet", {"name": "bo"})
            assert ductape_env.now().year == 2030 and run.status == "running"
            ductape_env.advance("30d")
            assert run.result()["output"] == "hello bo"
    """),
        encoding="utf-8",
    )
    installed = any(ep.name == "ductape" for ep in entry_points(group="pytest11"))
    args = [] if installed else ["-p", "ductape_cli.testing.plugin"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUCTAPE_", "PYTEST_"))}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=tmp_path / "tests",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
