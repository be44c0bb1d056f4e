"""A large input is stored once, and listing runs never reads inputs or outputs (item 16)."""

from __future__ import annotations

import sqlite3
import tracemalloc

SAMPLE = """
    from ductape_cli import workflow

    @workflow("bulk")
    async def bulk(ctx):
        return await ctx.step("size", lambda: len(ctx.input["blob"]))
"""

MB = 1024 * 1024


def test_the_input_is_stored_once_and_history_still_shows_it(project, cli) -> None:
    project.write("bulk", SAMPLE)
    (project.root / "in.json").write_text('{"blob": "%s"}' % ("x" * (2 * MB)))
    result = cli("run", "bulk", "--input", "@in.json", "--json")
    assert result.exit_code == 0 and result.json()["output"] == 2 * MB
    run_id = result.json()["workflow_id"]
    with sqlite3.connect(project.store) as conn:
        in_runs = conn.execute("SELECT length(input) FROM runs").fetchone()[0]
        in_events = conn.execute("SELECT coalesce(sum(length(data)), 0) FROM events").fetchone()[0]
    assert in_runs > 2 * MB and in_events < 10_000
    history = cli("history", run_id, "--json").json()
    started = next(e for e in history["events"] if e["type"] == "workflow_started")
    assert len(started["data"]["input"]["blob"]) == 2 * MB


def test_list_does_not_load_inputs_or_outputs(project, cli) -> None:
    project.write("bulk", SAMPLE)
    engine = project.engine()
    for _ in range(20):
        engine.start("bulk", {"blob": "y" * MB}, detach=True)
    engine.close()
    fresh = project.engine()
    tracemalloc.start()
    try:
        runs = fresh.list_runs(limit=20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(runs) == 20 and all(r.input is None for r in runs)
    assert peak < 2 * MB, f"listing 20 runs allocated {peak / MB:.1f} MB"
    listed = cli("list", "--json")
    assert listed.exit_code == 0 and len(listed.json()) == 20
    assert (
        fresh.store.list_runs(limit=1)[0].input["blob"] == "y" * MB
    )  # the store's full rows are still there
