"""Failure handling: retries, timeouts, allow_fail, rollback strategies, checkpoints, manual rollback."""

from __future__ import annotations

import time

import pytest

STRATEGY_WORKFLOWS = """
    from ductape_cli import workflow

    UNDONE = []

    def undo(tag):
        return lambda output: UNDONE.append(tag)

    def fail():
        raise RuntimeError("boom")

    @workflow("reverse-all", rollback_strategy="reverse_all")
    async def reverse_all(ctx):
        await ctx.step("step-a", lambda: "a", undo("step-a"))
        await ctx.step("step-b", lambda: "b", undo("step-b"))
        await ctx.step("step-c", fail)

    @workflow("critical-only", rollback_strategy="critical_only")
    async def critical_only(ctx):
        await ctx.step("payment", lambda: {"id": "ch_1"}, undo("payment"), {"critical": True})
        await ctx.step("analytics", lambda: 1, undo("analytics"), {"critical": False})
        await ctx.step("inventory", fail)

    @workflow("to-checkpoint", rollback_strategy="to_checkpoint")
    async def to_checkpoint(ctx):
        await ctx.step("create-user", lambda: 1, undo("create-user"))
        await ctx.checkpoint("user-created")
        await ctx.step("payment", lambda: 2, undo("payment"))
        await ctx.step("inventory", fail, undo("inventory"))

    @workflow("no-rollback", rollback_strategy="none")
    async def no_rollback(ctx):
        await ctx.step("risky-prep", lambda: 1, undo("risky-prep"))
        try:
            await ctx.step("risky-operation", fail)
        except Exception:
            result = await ctx.trigger_rollback("Manual rollback triggered")
            return {"manual": result}
"""


@pytest.fixture
def strategies(project):
    project.write("strategies", STRATEGY_WORKFLOWS)
    engine = project.engine()
    undone = engine.definition("reverse-all").handler.__globals__["UNDONE"]
    return engine, undone


def test_reverse_all_undoes_every_completed_step_newest_first(strategies) -> None:
    engine, undone = strategies
    result = engine.run("reverse-all", {})
    assert result["status"] == "rolled_back"
    assert undone == ["step-b", "step-a"]
    assert result["failed_step"] == "step-c"
    assert result["error"] == {"message": "boom", "step": "step-c", "code": "STEP_FAILED"}
    assert result["rollback_result"] == {
        "rolled_back_steps": ["step-b", "step-a"],
        "failed_steps": [],
    }
    types = [e["type"] for e in engine.history(result["workflow_id"])]
    assert types[-5:] == [
        "step_failed",
        "rollback_started",
        "step_rolled_back",
        "step_rolled_back",
        "workflow_rolled_back",
    ]
    steps = {s["tag"]: s["status"] for s in engine.status(result["workflow_id"])["steps"]}
    assert steps == {"step-a": "rolled_back", "step-b": "rolled_back", "step-c": "failed"}


def test_critical_only_undoes_only_critical_steps(strategies) -> None:
    engine, undone = strategies
    result = engine.run("critical-only", {})
    assert undone == ["payment"]
    assert result["status"] == "rolled_back"


def test_to_checkpoint_keeps_what_came_before_the_checkpoint(strategies) -> None:
    engine, undone = strategies
    result = engine.run("to-checkpoint", {})
    assert undone == [
        "payment"
    ]  # the failed step itself never completed; create-user is before the checkpoint
    assert result["rollback_result"]["rolled_back_steps"] == ["payment"]


def test_none_with_manual_trigger_rollback(strategies) -> None:
    engine, undone = strategies
    result = engine.run("no-rollback", {})
    assert undone == ["risky-prep"]
    assert result["status"] == "rolled_back"
    manual = result["output"]["manual"]
    assert manual == {
        "success": True,
        "rolled_back_steps": ["risky-prep"],
        "failed_steps": [],
        "reason": "Manual rollback triggered",
    }


def test_failed_rollback_handler_is_recorded_and_the_others_still_run(project) -> None:
    project.write(
        "partial",
        """
        from ductape_cli import workflow
        UNDONE = []

        def broken(output):
            raise RuntimeError("refund API down")

        @workflow("partial")
        async def partial(ctx):
            await ctx.step("a", lambda: 1, lambda out: UNDONE.append("a"))
            await ctx.step("b", lambda: 2, broken)
            await ctx.step("c", lambda: 1 / 0)
    """,
    )
    engine = project.engine()
    result = engine.run("partial", {})
    assert result["status"] == "failed"
    assert result["rollback_result"] == {
        "rolled_back_steps": ["a"],
        "failed_steps": [{"tag": "b", "error": "refund API down"}],
    }
    assert engine.definition("partial").handler.__globals__["UNDONE"] == ["a"]


def test_retries_with_backoff_record_every_attempt(project, cli) -> None:
    project.write(
        "flaky",
        """
        from ductape_cli import workflow
        ATTEMPTS = []
        ERRORS = []

        def flaky():
            ATTEMPTS.append(1)
            if len(ATTEMPTS) < 3:
                raise ConnectionError(f"try {len(ATTEMPTS)} failed")
            return {"ok": len(ATTEMPTS)}

        @workflow("flaky")
        async def flaky_wf(ctx):
            return await ctx.step("call", flaky, None,
                                  {"retries": 3, "retryDelay": 5, "backoff": 2, "max_delay": "8ms", "onError": ERRORS.append})
    """,
    )
    engine = project.engine()
    started = time.monotonic()
    result = engine.run("flaky", {})
    assert result["status"] == "completed" and result["output"] == {"ok": 3}
    assert time.monotonic() - started >= 0.013  # 5 ms then 8 ms (10 capped at max_delay)
    assert [str(e) for e in engine.definition("flaky").handler.__globals__["ERRORS"]] == [
        "try 1 failed",
        "try 2 failed",
    ]
    detail = cli("step", result["workflow_id"], "call", "--json").json()
    assert detail["attempts"] == 3
    assert [a["attempt"] for a in detail["attempt_log"]] == [1, 2, 3]
    assert detail["attempt_log"][0]["error"]["message"] == "try 1 failed"
    assert detail["attempt_log"][0]["duration"] is not None
    retried = [e for e in engine.history(result["workflow_id"]) if e["type"] == "step_retried"]
    assert [e["data"]["delay_ms"] for e in retried] == [5, 8]


def test_exhausted_retries_fail_the_run(project) -> None:
    project.write(
        "always",
        """
        from ductape_cli import workflow

        @workflow("always")
        async def always(ctx):
            await ctx.step("call", lambda: 1 / 0, retries=2, retry_delay=1)
    """,
    )
    engine = project.engine()
    result = engine.run("always", {})
    assert result["status"] == "failed" and result["failed_step"] == "call"
    assert engine.step_detail(result["workflow_id"], "call")["attempts"] == 3


def test_async_step_timeout_cancels_and_sync_timeout_abandons(project) -> None:
    project.write(
        "slow",
        """
        import asyncio, time
        from ductape_cli import workflow

        async def slow_async():
            await asyncio.sleep(5)

        def slow_sync():
            time.sleep(0.5)
            return "late"

        @workflow("slow-async")
        async def slow_a(ctx):
            await ctx.step("wait", slow_async, timeout=50)

        @workflow("slow-sync")
        async def slow_s(ctx):
            await ctx.step("wait", slow_sync, timeout="50ms")
    """,
    )
    engine = project.engine()
    for tag in ("slow-async", "slow-sync"):
        started = time.monotonic()
        result = engine.run(tag, {})
        assert time.monotonic() - started < 0.4
        assert result["status"] == "failed"
        assert result["error"]["code"] == "STEP_TIMEOUT"
        assert "timed out after 50 ms" in result["error"]["message"]


def test_allow_fail_skips_returns_none_and_keeps_the_error(project) -> None:
    project.write(
        "optional",
        """
        from ductape_cli import workflow

        @workflow("optional")
        async def optional(ctx):
            sent = await ctx.step("send-email", lambda: 1 / 0, None, {"allow_fail": True})
            after = await ctx.step("after", lambda: "still ran")
            return {"sent": sent, "after": after}
    """,
    )
    engine = project.engine()
    result = engine.run("optional", {})
    assert result["status"] == "completed"
    assert result["output"] == {"sent": None, "after": "still ran"}
    detail = engine.step_detail(result["workflow_id"], "send-email")
    assert detail["status"] == "skipped" and detail["error"]["message"] == "division by zero"


def test_error_outside_any_step_fails_the_run_and_rolls_back(project) -> None:
    project.write(
        "outside",
        """
        from ductape_cli import workflow

        @workflow("outside")
        async def outside(ctx):
            await ctx.step("a", lambda: 1, lambda out: None)
            if ctx.input["explode"] is True:
                raise ValueError("bad state")
    """,
    )
    result = project.engine().run("outside", {"explode": True})
    assert result["status"] == "rolled_back"
    assert (
        result["error"]["message"] == "ValueError: bad state"
        and result["error"]["code"] == "HANDLER_ERROR"
    )
    assert result["rollback_result"]["rolled_back_steps"] == ["a"]


def test_workflow_timeout_fails_with_timeout_and_applies_the_strategy(project, cli) -> None:
    project.write(
        "late",
        """
        import asyncio
        from ductape_cli import workflow

        @workflow("late", timeout=100)
        async def late(ctx):
            await ctx.step("a", lambda: 1, lambda out: None)
            await ctx.step("slow", lambda: asyncio.sleep(2))
    """,
    )
    result = cli("run", "late", "--json")
    data = result.json()
    assert data["error"]["code"] == "TIMEOUT"
    assert data["rollback_result"]["rolled_back_steps"] == ["a"]
    assert result.exit_code == 3
    override = cli("run", "late", "--timeout", "50ms", "--json").json()
    assert override["error"]["message"] == "workflow timed out after 50 ms"


def test_circuit_breaker_max_events(project) -> None:
    project.write(
        "loop",
        """
        from ductape_cli import workflow

        @workflow("runaway", max_events=20)
        async def runaway(ctx):
            for i in range(100):
                await ctx.step(f"s-{i}", lambda: i)
    """,
    )
    engine = project.engine()
    result = engine.run("runaway", {})
    assert result["status"] == "failed"
    assert result["error"]["code"] == "MAX_EVENTS_EXCEEDED"
    assert len(result["completed_steps"]) < 15


def test_unknown_step_option_is_a_clear_error(project) -> None:
    project.write(
        "typo",
        """
        from ductape_cli import workflow

        @workflow("typo")
        async def typo(ctx):
            if ctx.input["go"] is True:
                await ctx.step("a", lambda: 1, retires=3)
    """,
    )
    result = project.engine().run("typo", {"go": True})
    assert result["status"] == "failed"
    assert "unknown option 'retires'" in result["error"]["message"]


def test_status_tree_shows_glyphs_and_rollback_marks(strategies, cli) -> None:
    engine, _ = strategies
    run_id = engine.run("reverse-all", {})["workflow_id"]
    text = cli("status", run_id).stdout
    assert "↺ step-a" in text and "✗ step-c" in text and "rolled_back" in text
