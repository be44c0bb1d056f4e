"""A parallel fan-out of 20 steps killed in the middle: resume re-runs only the unfinished ones."""

from __future__ import annotations

import json
import signal
from collections import Counter

from tests.process.helpers import lines, run, spawn, wait_for

FAN_OUT = """
    import asyncio, os
    from pathlib import Path
    from ductape_cli import workflow

    ROOT = Path(os.environ.get("DUCTAPE_PROJECT", "."))

    async def work(i):
        with (ROOT / "effects.log").open("a") as f:
            f.write(f"item-{i}\\n")
        if i >= 10 and (ROOT / "block").exists():
            await asyncio.sleep(60)   # the kill lands while these are in flight
        return i * 10

    @workflow("fan-out-20")
    async def fan_out(ctx):
        results = await ctx.parallel([ctx.step(f"item-{i}", lambda i=i: work(i)) for i in range(20)], concurrency=4)
        return {"sum": sum(results)}
"""


def test_parallel_fan_out_killed_and_resumed(project, durability_report) -> None:
    project.write("fan", FAN_OUT)
    (project.root / "block").write_text("")
    effects = project.root / "effects.log"
    proc = spawn(project.root, "run", "fan-out-20", "--workflow-id", "fan", "--json")
    wait_for(lambda: len(lines(effects)) >= 14, what="the first items")
    engine = project.engine()
    wait_for(lambda: len(engine.store.load_journal("fan")) >= 10, what="ten commits")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    (project.root / "block").unlink()
    done_before = {r.tag for r in engine.store.load_journal("fan").values()}

    resumed = run(project.root, "resume", "fan", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["output"] == {"sum": sum(i * 10 for i in range(20))}
    counts = Counter(lines(effects))
    assert all(counts[tag] == 1 for tag in done_before), counts
    assert all(1 <= counts[f"item-{i}"] <= 2 for i in range(20)), counts
    rerun = sorted(t for t, c in counts.items() if c == 2)
    durability_report(
        f"parallel crash test: steps=20 kills=1 completed_before_kill={len(done_before)} re-run={len(rerun)} duplicates_recorded=0"
    )
