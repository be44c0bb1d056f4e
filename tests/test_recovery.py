"""Recovery you can trust (issue 13): replay, restart, resume, signals and rollbacks.

The rule behind every test: a compensation or side effect that the journal says
happened never happens again, and what the journal says is what happened.
Side effects are appended to effects.log in the project folder and counted.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from ductape_cli.config import load_config
from ductape_cli.engine.engine import Engine
from ductape_cli.testing.clock import VirtualClock

# The side effect every workflow below writes to effects.log (and fails on when `fail_flag` exists).
EFFECT = """def effect(line, value=None, fail_flag=None):
    with open("effects.log", "a", encoding="utf-8") as log:
        log.write(line + "\\n")
    if fail_flag and Path(fail_flag).exists():
        raise RuntimeError(f"{line}: {fail_flag}")
    return value
"""

FLOWS = (
    """
from pathlib import Path

from ductape_cli import SignalTimeout, workflow

"""
    + EFFECT
    + """

@workflow("pay-and-ship")
async def pay_and_ship(ctx):
    await ctx.step("validate", lambda: effect("VALIDATE", {"ok": True}))
    charge = await ctx.step("charge", lambda: effect("CHARGE", {"id": "ch_1"}), lambda out: effect("REFUND " + out["id"]))
    await ctx.step("ship", lambda: effect("SHIP", {"sent": True}, "carrier-down"))
    return {"charge": charge["id"]}


@workflow("late-signal", signals={"go": {}})
async def late_signal(ctx):
    await ctx.step("prepare", lambda: effect("PREPARE", 1))
    try:
        got = await ctx.wait_for_signal("go", timeout="8s")
    except SignalTimeout:
        return "timed out"
    return {"got": got}


@workflow("payment-processing")
async def payment_processing(ctx):
    return await ctx.step("capture", lambda: effect("CAPTURE " + str(ctx.input.amount), {"captured": ctx.input.amount}))


@workflow("order-with-child")
async def order_with_child(ctx):
    await ctx.step("check", lambda: effect("CHECK", {"ok": True}, "bad-check"))
    payment = await ctx.workflow("payment-" + ctx.input.orderId, "payment-processing", {"amount": ctx.input.amount})
    return {"payment": payment}


@workflow("approval-child", signals={"go": {}})
async def approval_child(ctx):
    await ctx.wait_for_signal("go")
    return "approved"


@workflow("waits-on-child")
async def waits_on_child(ctx):
    result = await ctx.workflow("child-of-" + ctx.workflow_id, "approval-child", {})
    return {"child": result}


@workflow("manual-rollbacks", rollback_strategy="none")
async def manual_rollbacks(ctx):
    await ctx.step("a", lambda: effect("A", 1), lambda out: effect("UNDO A"))
    first = await ctx.trigger_rollback("first")
    await ctx.step("b", lambda: effect("B", 2), lambda out: effect("UNDO B"))
    await ctx.step("c", lambda: effect("C", 3), lambda out: effect("UNDO C"))
    second = await ctx.trigger_rollback("second")
    return {"first": first["rolled_back_steps"], "second": second["rolled_back_steps"]}


@workflow("manual-then-fail")
async def manual_then_fail(ctx):
    await ctx.step("a", lambda: effect("A", 1), lambda out: effect("UNDO A"))
    await ctx.trigger_rollback("first")
    await ctx.step("b", lambda: effect("B", 2), lambda out: effect("UNDO B"))
    await ctx.step("boom", lambda: effect("BOOM", None, "boom"))


@workflow("tolerant")
async def tolerant(ctx):
    await ctx.step("one", lambda: effect("ONE", 1))
    return "done"
"""
)


@pytest.fixture
def flows(project: Any) -> Any:
    project.write("flows", FLOWS)
    return project


def effects(project: Any) -> Counter[str]:
    path = project.root / "effects.log"
    return Counter(path.read_text(encoding="utf-8").splitlines() if path.exists() else [])


def flag(project: Any, name: str, on: bool = True) -> None:
    path = project.root / name
    path.touch() if on else path.unlink(missing_ok=True)


def events_of(cli: Any, run_id: str) -> list[dict[str, Any]]:
    return list(cli("history", run_id, "--json").json()["events"])


# -- 1. replay --from-step never re-compensates ---------------------------------------


def test_replay_from_step_after_a_compensated_step_is_refused_and_refunds_nothing(
    flows: Any, cli: Any
) -> None:
    flag(flows, "carrier-down")
    first = cli("run", "pay-and-ship", "--json")
    assert first.exit_code == 3, first.stderr
    run_id = first.json()["workflow_id"]
    assert effects(flows)["REFUND ch_1"] == 1

    replay = cli("replay", run_id, "--from-step", "ship", "--json")
    assert replay.exit_code == 2
    assert (
        "charge" in replay.stderr
        and "compensated" in replay.stderr
        and "--from-step charge" in replay.stderr
    )
    assert "Traceback" not in replay.stderr
    assert effects(flows)["REFUND ch_1"] == 1
    assert len(cli("list", "--json").json()) == 1  # nothing written

    # From the compensated step itself (or earlier) is allowed: the charge runs again, and its
    # own refund is the only new one.
    again = cli("replay", run_id, "--from-step", "charge", "--json")
    assert again.exit_code == 3, again.stderr
    counts = effects(flows)
    assert counts["CHARGE"] == 2 and counts["REFUND ch_1"] == 2 and counts["VALIDATE"] == 1


# -- 3. a late signal loses to an expired signal timeout ------------------------------------


def test_a_signal_after_the_wait_deadline_loses_to_the_timeout(flows: Any) -> None:
    clock = VirtualClock(1_800_000_000)
    engine = Engine(load_config(flows.root), clock=clock)
    try:
        started = engine.run("late-signal", {})
        assert started["status"] == "running"
        clock.advance(9)  # nobody polled in time
        result = engine.signal(started["workflow_id"], "go", {})
        assert result["status"] == "completed" and result["output"] == "timed out"
        history = engine.history(started["workflow_id"])
        refused = [e for e in history if e["type"] == "signal_refused"]
        assert (
            refused
            and refused[0]["data"]["signal"] == "go"
            and "deadline" in refused[0]["data"]["reason"]
        )
        assert not [e for e in history if e["type"] == "signal_received"]
    finally:
        engine.close()


@pytest.mark.parametrize("processor", ["worker", "resume"])
def test_a_late_signal_stored_without_continuing_loses_whoever_processes_the_run(
    flows: Any, processor: str
) -> None:
    from ductape_cli.engine.worker import Worker

    clock = VirtualClock(1_800_000_000)
    engine = Engine(load_config(flows.root), clock=clock)
    try:
        started = engine.run("late-signal", {})
        clock.advance(9)
        engine.signal(started["workflow_id"], "go", {}, continue_inline=False)
        if processor == "worker":
            Worker(engine).run(once=True)
        else:
            engine.resume(started["workflow_id"])
        assert engine.result(started["workflow_id"])["output"] == "timed out"
        assert [
            e["type"]
            for e in engine.history(started["workflow_id"])
            if e["type"].startswith("signal_")
        ] == [
            "signal_waiting",
            "signal_timed_out",
            "signal_refused",
        ]
    finally:
        engine.close()


def test_a_signal_before_the_deadline_still_wins_when_processed_late(flows: Any) -> None:
    clock = VirtualClock(1_800_000_000)
    engine = Engine(load_config(flows.root), clock=clock)
    try:
        started = engine.run("late-signal", {})
        clock.advance(7)
        engine.signal(started["workflow_id"], "go", {}, continue_inline=False)
        clock.advance(5)  # processed after the deadline, but it arrived in time
        result = engine.resume(started["workflow_id"])
        assert result["status"] == "completed" and result["output"] == {"got": {}}
    finally:
        engine.close()


# -- 4. replay / restart of a parent with a deterministic child id ------------------------


def test_restart_and_replay_of_a_parent_give_their_children_their_own_ids(
    flows: Any, cli: Any
) -> None:
    flag(flows, "bad-check")
    failed = cli("run", "order-with-child", "--input", '{"orderId": "O1", "amount": 10}', "--json")
    assert failed.exit_code == 1
    flag(flows, "bad-check", False)
    original = cli(
        "run", "order-with-child", "--input", '{"orderId": "O2", "amount": 20}', "--json"
    )
    assert original.exit_code == 0, original.stderr
    original_id = original.json()["workflow_id"]

    restarted = cli("restart", failed.json()["workflow_id"], "--set", "amount=15", "--json")
    assert restarted.exit_code == 0, restarted.stderr
    assert restarted.json()["output"] == {"payment": {"captured": 15}}

    replayed = cli("replay", original_id, "--json")
    assert replayed.exit_code == 0, replayed.stderr
    replay_id = replayed.json()["workflow_id"]
    child_id = f"payment-O2@{replay_id}"
    child = cli("status", child_id, "--json").json()
    assert child["status"] == "completed" and child["parent_id"] == replay_id
    family = {
        e["workflow_id"]: e for e in cli("related", original_id, "--json").json()["executions"]
    }
    assert family[child_id]["replaces_child"] == "payment-O2"
    assert effects(flows)["CAPTURE 20"] == 2 and effects(flows)["CAPTURE 15"] == 1

    corrected = cli("restart", original_id, "--set", "amount=25", "--json")
    assert corrected.exit_code == 0, corrected.stderr
    assert corrected.json()["output"] == {"payment": {"captured": 25}}
    assert cli("status", f"payment-O2@{corrected.json()['workflow_id']}", "--json").json()[
        "input"
    ] == {"amount": 25}

    # A resume of the same run keeps its child.
    resumed = cli("resume", replay_id, "--from-step", "check", "--json")
    assert resumed.exit_code == 2 and "already completed" in resumed.stderr


# -- 5. code that now returns early is a non-determinism error ----------------------------


EARLY_V1 = """
from ductape_cli import workflow

@workflow("early", signals={"go": {}})
async def early(ctx):
    await ctx.step("first", lambda: 1)
    await ctx.step("second", lambda: 2)
    await ctx.wait_for_signal("go")
    return "v1"
"""

EARLY_V2 = """
from ductape_cli import workflow

@workflow("early", signals={"go": {}})
async def early(ctx):
    await ctx.step("first", lambda: 1)
    return "v2"
"""


def test_a_handler_that_now_returns_before_journaled_operations_is_non_determinism(
    project: Any, cli: Any
) -> None:
    project.write("early", EARLY_V1)
    started = cli("run", "early", "--json")
    assert started.exit_code == 5
    run_id = started.json()["workflow_id"]
    project.write("early", EARLY_V2)
    result = cli("signal", run_id, "go", "--json")
    assert result.exit_code == 1, result.stdout
    status = cli("status", run_id, "--json").json()
    assert status["status"] == "failed" and status["error"]["code"] == "NON_DETERMINISM"
    assert "second" in status["error"]["message"] and status["output"] is None


# -- 7. rollback_result after several trigger_rollback calls ------------------------------


def test_rollback_result_is_the_union_of_manual_rollbacks_newest_first(
    flows: Any, cli: Any
) -> None:
    result = cli("run", "manual-rollbacks", "--json")
    assert result.exit_code == 3, result.stderr
    data = result.json()
    assert data["output"] == {"first": ["a"], "second": ["c", "b"]}
    assert data["rollback_result"]["rolled_back_steps"] == ["c", "b", "a"]
    assert cli("status", data["workflow_id"], "--json").json()["rollback_result"][
        "rolled_back_steps"
    ] == ["c", "b", "a"]
    counts = effects(flows)
    assert counts["UNDO A"] == counts["UNDO B"] == counts["UNDO C"] == 1


def test_rollback_result_after_a_manual_rollback_then_a_failure(flows: Any, cli: Any) -> None:
    flag(flows, "boom")
    result = cli("run", "manual-then-fail", "--json")
    assert result.exit_code == 3, result.stderr
    assert result.json()["rollback_result"] == {"rolled_back_steps": ["b", "a"], "failed_steps": []}
    counts = effects(flows)
    assert counts["UNDO A"] == counts["UNDO B"] == 1


# -- 8. cancelling a child carries its parent on ----------------------------------------


def test_cancelling_a_child_directly_ends_its_waiting_parent(flows: Any, cli: Any) -> None:
    started = cli("run", "waits-on-child", "--json")
    assert started.exit_code == 5
    parent_id = started.json()["workflow_id"]
    child_id = "child-of-" + parent_id
    cancelled = cli("cancel", child_id, "--reason", "no longer needed", "--json")
    assert cancelled.exit_code == 4, cancelled.stderr
    parent = cli("status", parent_id, "--json").json()
    assert parent["status"] == "failed" and parent["error"]["code"] == "CANCELLED"
    assert parent["error"]["step"] == child_id


# -- 12. idempotency key reused with different input ---------------------------------------


def test_idempotency_key_with_different_input_is_refused_naming_the_run(
    flows: Any, cli: Any
) -> None:
    first = cli("run", "tolerant", "--input", '{"n": 1}', "--idempotency-key", "k-1", "--json")
    assert first.exit_code == 0
    run_id = first.json()["workflow_id"]
    same = cli("run", "tolerant", "--input", '{"n": 1}', "--idempotency-key", "k-1", "--json")
    assert same.exit_code == 0 and same.json()["workflow_id"] == run_id
    other = cli("run", "tolerant", "--input", '{"n": 2}', "--idempotency-key", "k-1", "--json")
    assert other.exit_code == 2 and run_id in other.stderr and "different input" in other.stderr
    assert effects(flows)["ONE"] == 1
    assert len(cli("list", "--json").json()) == 1


# -- 6. failed compensations are retried, and recoverable by resume --------------------------

COMPENSATIONS = (
    """
from pathlib import Path

from ductape_cli import workflow

"""
    + EFFECT
    + '''

def flaky_refund(out):
    """Fails until it has been attempted `refund-fails` times (a number in that file)."""
    tries = Path("refund-tries")
    n = int(tries.read_text()) + 1 if tries.exists() else 1
    tries.write_text(str(n))
    limit = int(Path("refund-fails").read_text()) if Path("refund-fails").exists() else 0
    effect("REFUND-ATTEMPT")
    if n <= limit:
        raise RuntimeError(f"payment provider down (attempt {n})")
    effect("REFUND " + out["id"])


@workflow("compensated-order")
async def compensated_order(ctx):
    await ctx.step("reserve", lambda: effect("RESERVE", {"r": 1}), lambda out: effect("RELEASE"))
    await ctx.step("charge", lambda: effect("CHARGE", {"id": "ch_9"}), flaky_refund, retries=0,
                   rollback_retries=2, rollback_retry_delay="10ms")
    await ctx.step("ship", lambda: effect("SHIP", None, "carrier-down"))
'''
)


@pytest.fixture
def orders(project: Any) -> Any:
    project.write("orders", COMPENSATIONS)
    flag(project, "carrier-down")
    return project


def test_a_failing_compensation_is_retried_and_each_attempt_is_journaled(
    orders: Any, cli: Any
) -> None:
    (orders.root / "refund-fails").write_text("2")
    result = cli("run", "compensated-order", "--json")
    assert result.exit_code == 3, result.stdout + result.stderr
    assert result.json()["rollback_result"] == {
        "rolled_back_steps": ["charge", "reserve"],
        "failed_steps": [],
    }
    counts = effects(orders)
    assert counts["REFUND-ATTEMPT"] == 3 and counts["REFUND ch_9"] == 1 and counts["RELEASE"] == 1
    retried = [
        e
        for e in events_of(cli, result.json()["workflow_id"])
        if e["type"] == "step_rollback_retried"
    ]
    assert [e["data"]["attempt"] for e in retried] == [1, 2]
    assert "provider down" in retried[0]["data"]["error"]


def test_resume_retries_only_the_failed_compensations_and_ends_rolled_back(
    orders: Any, cli: Any
) -> None:
    (orders.root / "refund-fails").write_text("100")
    failed = cli("run", "compensated-order", "--json")
    assert failed.exit_code == 1, failed.stdout + failed.stderr
    run_id = failed.json()["workflow_id"]
    assert failed.json()["rollback_result"]["failed_steps"][0]["tag"] == "charge"
    assert effects(orders)["REFUND-ATTEMPT"] == 3  # the first try and two retries

    refused = cli("resume", run_id, "--from-step", "ship")
    assert refused.exit_code == 2 and f"ductape resume {run_id}" in refused.stderr

    (orders.root / "refund-fails").write_text("0")
    resumed = cli("resume", run_id, "--json")
    assert resumed.exit_code == 3, resumed.stdout + resumed.stderr
    data = resumed.json()
    assert data["status"] == "rolled_back"
    assert data["rollback_result"] == {
        "rolled_back_steps": ["charge", "reserve"],
        "failed_steps": [],
    }
    counts = effects(orders)
    assert counts["REFUND ch_9"] == 1 and counts["RELEASE"] == 1  # the release is not repeated
    assert counts["RESERVE"] == counts["CHARGE"] == counts["SHIP"] == 1  # no forward step re-ran
    charge = cli("step", run_id, "charge", "--json").json()
    assert charge["rollback_status"] == "completed"
    again = cli("resume", run_id)
    assert again.exit_code == 2 and "rolled back" in again.stderr


# -- 9. resume --from-checkpoint / --from-step takes --input -----------------------------

CHECKOUT = (
    """
from pathlib import Path

from ductape_cli import workflow

"""
    + EFFECT
    + """

@workflow("checkout", rollback_strategy="none")
async def checkout(ctx):
    await ctx.step("cart", lambda: effect("CART", {"total": 5}))
    await ctx.checkpoint("payment-complete", {"charge": "ch_1"})
    paid = await ctx.step("pay", lambda: effect("PAY", {"retry": ctx.input.retry_payment}, "pay-down"))
    return {"paid": paid, "order": ctx.input.order, "retry_payment": ctx.input.retry_payment}
"""
)


def test_resume_from_a_checkpoint_with_input_merges_it_for_the_re_executed_part(
    project: Any, cli: Any
) -> None:
    project.write("checkout", CHECKOUT)
    flag(project, "pay-down")
    failed = cli("run", "checkout", "--input", '{"order": "O1", "retry_payment": true}', "--json")
    assert failed.exit_code == 1
    run_id = failed.json()["workflow_id"]
    flag(project, "pay-down", False)

    bad = cli("resume", run_id, "--from-checkpoint", "payment-complete", "--input", "{nope")
    assert bad.exit_code == 2 and "not valid JSON" in bad.stderr
    alone = cli("resume", run_id, "--input", '{"retry_payment": false}')
    assert alone.exit_code == 2 and "--from-checkpoint" in alone.stderr

    resumed = cli(
        "resume",
        run_id,
        "--from-checkpoint",
        "payment-complete",
        "--input",
        '{"retry_payment": false}',
        "--json",
    )
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.json()["output"] == {
        "paid": {"retry": False},
        "order": "O1",
        "retry_payment": False,
    }
    assert effects(project)["CART"] == 1 and effects(project)["PAY"] == 2

    resume_events = [e for e in events_of(cli, run_id) if e["type"] == "workflow_resumed"]
    assert resume_events[-1]["data"]["input"] == {"retry_payment": False}
    comparison = cli("compare", run_id, run_id, "--json").json()
    assert comparison["input_diff"] == {"retry_payment": [True, False]}
    before, after = comparison["workflow_ids"]
    pay = next(d for d in comparison["step_diffs"] if d["step"] == "pay")
    assert pay[before]["status"] == "failed" and pay[after]["status"] == "completed"


def test_a_rolled_back_run_is_refused_by_resume_naming_replay_from_step_and_restart(
    flows: Any, cli: Any
) -> None:
    flag(flows, "carrier-down")
    run_id = cli("run", "pay-and-ship", "--json").json()["workflow_id"]
    refused = cli("resume", run_id, "--from-step", "ship", "--input", '{"x": 1}')
    assert refused.exit_code == 2
    assert (
        f"ductape replay {run_id} --from-step" in refused.stderr
        and f"ductape restart {run_id}" in refused.stderr
    )


# -- 10. a query handler that raises --------------------------------------------------------

QUERIES = """
import operator

from ductape_cli import workflow

@workflow("asked", signals={"go": {}},
          queries={"ratio": lambda ctx: 1 / 0, "scribble": lambda ctx: operator.setitem(ctx.state, "x", 1)})
async def asked(ctx):
    await ctx.wait_for_signal("go")
"""


@pytest.mark.parametrize(
    ("name", "exception"), [("ratio", "ZeroDivisionError"), ("scribble", "TypeError")]
)
def test_a_query_that_raises_is_one_line_exit_1(
    project: Any, cli: Any, name: str, exception: str
) -> None:
    project.write("asked", QUERIES)
    run_id = cli("run", "asked", "--json").json()["workflow_id"]
    result = cli("query", run_id, name)
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert name in result.stderr and exception in result.stderr


# -- 11. signals nobody declared ------------------------------------------------------------

UNDECLARED = """
from ductape_cli import workflow

@workflow("open-waiter")
async def open_waiter(ctx):
    return await ctx.wait_for_signal("go")


@workflow("strict-waiter", signals={"go": {}})
async def strict_waiter(ctx):
    return await ctx.wait_for_signal("go")
"""


def test_an_undeclared_signal_is_shown_pending_and_one_that_can_never_be_consumed_is_exit_2(
    project: Any, cli: Any
) -> None:
    project.write("undeclared", UNDECLARED)
    run_id = cli("run", "open-waiter", "--json").json()["workflow_id"]
    stray = cli("signal", run_id, "stray", "--data", '{"n": 1}', "--json")
    assert stray.exit_code == 5, stray.stderr
    buffered = [e for e in events_of(cli, run_id) if e["type"] == "signal_buffered"]
    assert buffered and buffered[0]["data"] == {"signal": "stray", "payload": {"n": 1}}
    pending = cli("status", run_id, "--json").json()["pending_signals"]
    assert [(p["name"], p["payload"]) for p in pending] == [("stray", {"n": 1})]

    done = cli("signal", run_id, "go", "--data", '"yes"', "--json")
    assert done.exit_code == 0 and done.json()["output"] == "yes"
    late = cli("signal", run_id, "go")
    assert late.exit_code == 2 and "completed" in late.stderr

    strict = cli("run", "strict-waiter", "--json").json()["workflow_id"]
    refused = cli("signal", strict, "stray")
    assert refused.exit_code == 2 and "stray" in refused.stderr
    assert cli("status", strict, "--json").json()["pending_signals"] == []


# -- 13. sync steps never block the event loop -----------------------------------------------

BLOCKING = """
import time

from ductape_cli import workflow

def nap(n):
    time.sleep(0.3)
    return n

@workflow("naps")
async def naps(ctx):
    return await ctx.parallel([ctx.step(f"nap-{n}", lambda n=n: nap(n)) for n in range(6)])

@workflow("naps-with-timeout")
async def naps_with_timeout(ctx):
    return await ctx.parallel([ctx.step(f"nap-{n}", lambda n=n: nap(n), timeout="10s") for n in range(6)])
"""


@pytest.mark.parametrize("tag", ["naps", "naps-with-timeout"])
def test_a_parallel_group_of_blocking_sync_steps_takes_about_its_slowest_step(
    project: Any, tag: str
) -> None:
    import time

    project.write("naps", BLOCKING)
    engine = project.engine()
    try:
        engine.run(tag, {})  # compile and warm up the first time
        started = time.monotonic()
        result = engine.run(tag, {})
        elapsed = time.monotonic() - started
    finally:
        engine.close()
    assert result["output"] == [0, 1, 2, 3, 4, 5]
    assert elapsed < 1.2, f"6 parallel 0.3 s steps took {elapsed:.2f} s"  # one after another: 1.8 s


# -- 14. every recording ctx method can be awaited in an async handler -----------------------

AWAITED = """
from ductape_cli import workflow

@workflow("awaited")
async def awaited(ctx):
    await ctx.emit_event("order-placed", {"id": 1})
    await ctx.set_state("phase", "placed")
    await ctx.log.info("placed", {"id": 1})
    ctx.emit_event("not-awaited", {"id": 2})
    return ctx.get_state("phase")
"""


def test_emit_event_set_state_and_log_can_be_awaited(project: Any, cli: Any) -> None:
    project.write("awaited", AWAITED)
    result = cli("run", "awaited", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.json()["output"] == "placed"
    listed = cli("events", result.json()["workflow_id"], "--json").json()
    assert [e["type"] for e in listed] == ["order-placed", "not-awaited"]


# -- 15. a step option that can never be valid stops run before the first step --------------

MALFORMED = """
from ductape_cli import workflow

@workflow("malformed")
async def malformed(ctx):
    with open("effects.log", "a") as log:
        log.write("HANDLER\\n")
    await ctx.step("first", lambda: open("effects.log", "a").write("FIRST\\n"))
    await ctx.step("second", lambda: 2, condition="$Input{amount} >= >= 10")
"""


def test_a_malformed_condition_is_a_definition_error_before_anything_runs(
    project: Any, cli: Any
) -> None:
    project.write("malformed", MALFORMED)
    result = cli("run", "malformed", "--input", '{"amount": 20}', "--json")
    assert result.exit_code == 2
    assert (
        "invalid condition" in result.stderr
        and "second" in result.stderr
        and "Traceback" not in result.stderr
    )
    assert effects(project)["FIRST"] == 0
    assert cli("list", "--json").json() == []


# -- 16. recorded branch conditions describe; they never skip a step the handler reaches ------

BRANCHED = """
from ductape_cli import workflow

def effect(line, value=None):
    with open("effects.log", "a", encoding="utf-8") as log:
        log.write(line + "\\n")
    return value

@workflow("validated", branch_overrides={"validate": {"valid": True}})
async def validated(ctx):
    check = await ctx.step("validate", lambda: effect("VALIDATE", {"valid": ctx.input.valid}))
    if check["valid"]:
        await ctx.step("charge", lambda: effect("CHARGE", 1))
    await ctx.step("audit", lambda: effect("AUDIT", 1))
    return "ok"
"""


def test_an_unconditional_step_after_an_overridden_branch_always_runs(
    project: Any, cli: Any
) -> None:
    project.write("validated", BRANCHED)
    defined = cli("define", "--json")
    assert defined.exit_code == 0, defined.stderr
    schema = next(w["schema"] for w in defined.json()["workflows"] if w["tag"] == "validated")
    conditions = {s["tag"]: s["condition"] for s in schema["steps"]}
    assert conditions == {
        "validate": None,
        "charge": "$Step{validate}{valid} == true",
        "audit": None,
    }

    result = cli("run", "validated", "--input", '{"valid": false}', "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["completed_steps"] == ["validate", "audit"]
    assert effects(project)["AUDIT"] == 1 and effects(project)["CHARGE"] == 0
