"""Durable replay through the Python API: journaled outputs, determinism checks, context basics."""

from __future__ import annotations

import json

import pytest

from ductape_cli import define
from ductape_cli.errors import InvalidInput, InvalidState


def test_replay_returns_stored_outputs_without_calling_the_step_again(project, ductape_env) -> None:
    (wf,) = ductape_env.load(
        project.write(
            "counter",
            """
        from ductape_cli import workflow
        CALLS = []

        @workflow("counter")
        async def counter(ctx):
            a = await ctx.step("a", lambda: CALLS.append("a") or {"n": len(CALLS)})
            await ctx.sleep("10s")
            b = await ctx.step("b", lambda: CALLS.append("b") or a["n"] + 1)
            return {"a": a, "b": b}
    """,
        )
    )
    calls = wf.handler.__globals__["CALLS"]
    run = ductape_env.start("counter", {})
    assert run.waiting["kind"] == "sleep" and calls == ["a"]
    ductape_env.advance("10s")  # the run re-executes from the top: `a` comes from the journal
    assert run.result()["output"] == {"a": {"n": 1}, "b": 2}
    assert calls == ["a", "b"]


def test_non_determinism_names_file_line_expected_and_found(project) -> None:
    path = project.write(
        "drift",
        """
        from ductape_cli import workflow

        @workflow("drift")
        async def drift(ctx):
            await ctx.step("first", lambda: 1)
            await ctx.wait_for_signal("go")
            await ctx.step("second", lambda: 2)
    """,
    )
    engine = project.engine()
    run_id = engine.run("drift", {})["workflow_id"]
    path.write_text(path.read_text().replace('"first"', '"renamed"'))
    fresh = project.engine()
    result = fresh.signal(run_id, "go", {})
    assert result["status"] == "failed"
    message = result["error"]["message"]
    assert result["error"]["code"] == "NON_DETERMINISM"
    assert (
        "drift.py:6" in message
        and "'first'" in message
        and "'renamed'" in message
        and run_id in message
    )


def test_step_output_must_be_json(project) -> None:
    project.write(
        "badout",
        """
        from ductape_cli import workflow

        @workflow("badout")
        async def badout(ctx):
            return await ctx.step("make-set", lambda: {1, 2})
    """,
    )
    result = project.engine().run("badout", {})
    assert result["status"] == "failed"
    assert "make-set" in result["error"]["message"] and "set" in result["error"]["message"]
    assert "not JSON-serialisable" in result["error"]["message"]


def test_duplicate_step_tags_suggest_a_per_iteration_tag(project) -> None:
    project.write(
        "dup",
        """
        from ductape_cli import workflow

        @workflow("dup")
        async def dup(ctx):
            for item in ctx.input["items"]:
                await ctx.step("process", lambda: item)
    """,
    )
    result = project.engine().run("dup", {"items": [1, 2]})
    assert result["status"] == "failed"
    assert "duplicate step tag 'process'" in result["error"]["message"]
    assert "process-{item['id']}" in result["error"]["message"]


def test_sync_handlers_and_sync_or_async_steps(project) -> None:
    project.write(
        "mixed",
        """
        from ductape_cli import workflow

        async def double(x):
            return x * 2

        @workflow("mixed")
        def mixed(ctx):
            a = ctx.step("a", lambda: 21)
            b = ctx.step("b", lambda: double(a))
            ctx.set_state("seen", b)
            return {"b": b, "state": ctx.get_state("seen")}
    """,
    )
    result = project.engine().run("mixed", {})
    assert result["status"] == "completed", result
    assert result["output"] == {"b": 42, "state": 42}


def test_context_basics(project) -> None:
    project.write(
        "ctxwf",
        """
        from ductape_cli import workflow

        @workflow("ctxwf")
        async def ctxwf(ctx):
            first = await ctx.step("first", lambda: {"id": 7})
            t = ctx.transform
            ctx.log.info("hello", {"n": 1})
            ctx.set_state("count", 2)
            await ctx.checkpoint("after-first", {"id": first["id"]})
            return {
                "id": ctx.workflow_id.startswith("wf_"), "tag": ctx.workflow_tag, "env": ctx.env,
                "product": ctx.product, "email": ctx.input.email, "nested": ctx.input.user.name,
                "missing": ctx.input.nope, "default": ctx.default(ctx.input.currency, "usd"),
                "steps": ctx.steps["first"], "completed": ctx.completed_steps, "state": ctx.state,
                "checkpoint": [ctx.checkpoint_name, ctx.checkpoint_data], "upper": t.upper("a"),
                "trim": t.trim("  x "), "split": t.split("a,b", ","), "join": t.join(["a", "b"], "-"),
                "json": t.parse_json(t.stringify({"k": [1]})), "len": t.length([1, 2]), "size": t.size({"a": 1}),
                "date": t.format_date(0, "YYYY-MM-DD"), "context": ctx.context,
            }
    """,
    )
    result = project.engine().run(
        "ctxwf", {"email": "a@b.c", "user": {"name": "Ann"}}, context={"source": "api"}
    )
    assert result["status"] == "completed", result
    out = result["output"]
    assert (
        out["id"] is True
        and out["tag"] == "ctxwf"
        and out["env"] == "dev"
        and out["product"] == "test-product"
    )
    assert (
        out["email"] == "a@b.c"
        and out["nested"] == "Ann"
        and out["missing"] is None
        and out["default"] == "usd"
    )
    assert (
        out["steps"] == {"id": 7} and out["completed"] == ["first"] and out["state"] == {"count": 2}
    )
    assert out["checkpoint"] == ["after-first", {"id": 7}]
    assert (
        out["upper"] == "A"
        and out["trim"] == "x"
        and out["split"] == ["a", "b"]
        and out["join"] == "a-b"
    )
    assert (
        out["json"] == {"k": [1]}
        and out["len"] == 2
        and out["size"] == 1
        and out["date"] == "1970-01-01"
    )
    assert out["context"] == {"source": "api"}


def test_now_and_logs_are_not_repeated_on_replay(project) -> None:
    project.write(
        "clock",
        """
        from ductape_cli import workflow

        @workflow("clock")
        async def clock(ctx):
            before = ctx.transform.now()
            ctx.log.info("once")
            await ctx.sleep("1h")
            return {"before": before, "again": ctx.transform.now() >= before}
    """,
    )
    engine = project.engine()
    run_id = engine.run("clock", {})["workflow_id"]
    first_now = engine.store.load_journal(run_id)[0].output
    engine.store.conn.execute("UPDATE steps SET wake_at = 0 WHERE run_id = ?", (run_id,))
    result = engine.drive(run_id)
    assert result["output"]["before"] == first_now
    logs = [e for e in engine.history(run_id) if e["type"] == "log"]
    assert len(logs) == 1


def test_state_is_persisted_for_status_and_queries(project) -> None:
    project.write(
        "stateful",
        """
        from ductape_cli import workflow

        @workflow("stateful", queries={"progress": lambda ctx: {"state": dict(ctx.state), "done": ctx.completed_steps}})
        async def stateful(ctx):
            ctx.set_state("phase", "one")
            await ctx.step("a", lambda: 1)
            await ctx.wait_for_signal("next")
    """,
    )
    engine = project.engine()
    run_id = engine.run("stateful", {})["workflow_id"]
    assert engine.status(run_id)["state"] == {"phase": "one"}
    assert engine.query(run_id, "progress") == {"state": {"phase": "one"}, "done": ["a"]}


def test_input_model_validates_before_a_run_is_created(project) -> None:
    project.write(
        "typed",
        """
        from pydantic import BaseModel
        from ductape_cli import workflow

        class Order(BaseModel):
            order_id: str
            amount: float

        @workflow("typed", input_model=Order)
        async def typed(ctx):
            return ctx.input.amount
    """,
    )
    engine = project.engine()
    with pytest.raises(InvalidInput, match="amount"):
        engine.run("typed", {"order_id": "1"})
    assert engine.list_runs() == []
    assert engine.run("typed", {"order_id": "1", "amount": "2.5"})["output"] == 2.5


def test_define_function_mirrors_the_seed(project) -> None:
    engine = project.engine()

    async def handler(ctx):
        return await ctx.step("only", lambda: "ok")

    engine.register(
        define(
            tag="inline", handler=handler, options={"timeout": 300000, "rollback_strategy": "none"}
        )
    )
    assert engine.definition("inline").timeout_ms == 300000
    assert engine.run("inline", {})["output"] == "ok"


def test_resume_refuses_finished_runs(project) -> None:
    project.write(
        "quick",
        """
        from ductape_cli import workflow

        @workflow("quick")
        async def quick(ctx):
            return 1
    """,
    )
    engine = project.engine()
    run_id = engine.run("quick", {})["workflow_id"]
    with pytest.raises(InvalidState, match="already completed"):
        engine.resume(run_id)


def test_history_events_carry_step_outputs(project) -> None:
    project.write(
        "hist",
        """
        from ductape_cli import workflow

        @workflow("hist")
        async def hist(ctx):
            await ctx.step("a", lambda: {"v": 1})
    """,
    )
    engine = project.engine()
    run_id = engine.run("hist", {"x": 1})["workflow_id"]
    events = engine.history(run_id)
    assert [e["type"] for e in events] == [
        "workflow_started",
        "step_started",
        "step_completed",
        "workflow_completed",
    ]
    assert events[0]["data"]["input"] == {"x": 1}
    assert events[2]["data"] == {
        "step": "a",
        "output": {"v": 1},
        "attempt": 1,
        "duration_ms": events[2]["data"]["duration_ms"],
    }
    json.dumps(events)


LAST_STEP = """
    import asyncio, os, sqlite3
    from ductape_cli import workflow

    @workflow("one")
    async def one(ctx):
        return await ctx.step("only", lambda: {"n": 1})

    @workflow("then-wait")
    async def then_wait(ctx):
        await ctx.step("first", lambda: 1)
        await asyncio.sleep(0.01)  # plain code after a step: the loop turns before it goes on
        db = sqlite3.connect(os.path.join(os.environ["DUCTAPE_PROJECT"], ".ductape", "state.db"))
        try:
            rows = db.execute("SELECT tag FROM steps WHERE run_id = ?", (ctx.workflow_id,)).fetchall()
        finally:
            db.close()
        await ctx.step("second", lambda: 2)
        return [tag for (tag,) in rows]
"""


def _count_writes(engine, monkeypatch) -> dict[str, int]:
    """Count the store's step and finish writes (the real methods still run)."""
    counts = {"commit_step": 0, "finish_with_step": 0}
    store = engine.store
    commit_step, finish_run = store.commit_step, store.finish_run

    def counted_commit(*args, **kwargs):
        counts["commit_step"] += 1
        return commit_step(*args, **kwargs)

    def counted_finish(*args, **kwargs):
        counts["finish_with_step"] += kwargs.get("step") is not None
        return finish_run(*args, **kwargs)

    monkeypatch.setattr(store, "commit_step", counted_commit)
    monkeypatch.setattr(store, "finish_run", counted_finish)
    return counts


def test_a_run_that_ends_right_after_its_last_step_records_both_in_one_write(
    project, monkeypatch
) -> None:
    project.write("last_step", LAST_STEP)
    engine = project.engine()
    counts = _count_writes(engine, monkeypatch)
    result = engine.run("one", {})
    assert result["status"] == "completed" and result["output"] == {"n": 1}
    assert counts == {"commit_step": 0, "finish_with_step": 1}
    journal = engine.store.load_journal(result["workflow_id"])
    assert [(r.tag, r.output) for r in journal.values()] == [("only", {"n": 1})]
    assert [e["type"] for e in engine.history(result["workflow_id"])][-2:] == [
        "step_completed",
        "workflow_completed",
    ]


def test_a_step_row_is_written_before_the_run_goes_on_past_a_plain_await(
    project, monkeypatch
) -> None:
    project.write("last_step", LAST_STEP)
    monkeypatch.setenv("DUCTAPE_PROJECT", str(project.root))
    engine = project.engine()
    counts = _count_writes(engine, monkeypatch)
    result = engine.run("then-wait", {})
    assert result["status"] == "completed"
    assert result["output"] == ["first"]  # on disk while the handler still ran
    assert counts == {"commit_step": 1, "finish_with_step": 1}
