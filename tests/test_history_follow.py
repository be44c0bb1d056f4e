"""`history --follow` reads only what is new: a cursor over the events, each step's entries once."""

from __future__ import annotations

WAITS = """
    from ductape_cli import workflow

    @workflow("waits")
    async def waits(ctx):
        await ctx.step("before", lambda: 1)
        ctx.log.info("waiting")
        got = await ctx.wait_for_signal("go")
        await ctx.step("after", lambda: got)
        return got
"""


def test_follow_reads_each_event_once_after_a_cursor(project, monkeypatch) -> None:
    project.write("waits", WAITS)
    engine = project.engine()
    run_id = engine.run("waits", {})["workflow_id"]
    reads: list[int] = []
    events = engine.store.events

    def counted(run, *, after_id=0, types=None, limit=None):
        reads.append(after_id)
        return events(run, after_id=after_id, types=types, limit=limit)

    monkeypatch.setattr(engine.store, "events", counted)
    follow = engine.follow(run_id, poll=0)
    first = next(follow)
    assert [e["type"] for e in first][:3] == ["workflow_started", "step_started", "step_completed"]
    assert reads == [0]
    assert engine.signal(run_id, "go", {"ok": True})["status"] == "completed"
    rest = [entry for batch in follow for entry in batch]
    assert reads[1] == max(
        e["id"] for e in first if e["id"] is not None
    )  # only after what was shown
    assert all(after > 0 for after in reads[1:])
    assert [e["step"] for e in rest if e["type"] == "step_completed"] == [
        "after"
    ]  # "before" is not shown again
    assert rest[-1]["type"] == "workflow_completed"
    shown = [e["id"] for e in first + rest if e["id"] is not None]
    assert len(shown) == len(set(shown))
    assert first + rest == engine.history(run_id)  # the same timeline as reading it whole


def test_follow_with_a_type_filter_and_a_bad_type(project, cli) -> None:
    project.write("waits", WAITS)
    engine = project.engine()
    run_id = engine.run("waits", {})["workflow_id"]
    engine.signal(run_id, "go", 1)
    assert [
        e["type"] for batch in engine.follow(run_id, types=["step_completed"]) for e in batch
    ] == ["step_completed"] * 2
    bad = cli("history", run_id, "--follow", "--type", "nope")
    assert bad.exit_code == 2 and bad.stderr.startswith("ductape: unknown event type 'nope'")
