"""Crash storm: 200 runs of a 10-step workflow, worker processes SIGKILLed at random moments.

After a final recovery every run is terminal with its full output, no step's
completion is recorded twice, and the step functions ran at most once more per
kill that hit them (each worker runs one step at a time, so a kill can repeat
at most one step). The storm must land all its kills, and the store must pass
SQLite's integrity check afterwards.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from collections import Counter

from tests.process.helpers import lines, spawn, wait_for

RUNS = int(os.environ.get("DUCTAPE_TORTURE_RUNS", "200"))
MIN_KILLS = int(os.environ.get("DUCTAPE_TORTURE_KILLS", "20"))

STORM = """
    import os, time
    from pathlib import Path
    from ductape_cli import workflow

    LOG = Path(os.environ.get("DUCTAPE_PROJECT", ".")) / "effects.log"

    def effect(run_id, n):
        with LOG.open("a") as f:
            f.write(f"{run_id}:{n}\\n")
        time.sleep(0.002)   # a kill landing here repeats this step on recovery (at least once)
        return n

    @workflow("storm")
    async def storm(ctx):
        outputs = []
        for n in range(10):
            outputs.append(await ctx.step(f"s{n}", lambda n=n: effect(ctx.workflow_id, n)))
        return outputs
"""


def test_crash_storm(project, durability_report) -> None:
    project.write("storm", STORM)
    engine = project.engine()
    ids = [engine.start("storm", {}, detach=True)[0].id for _ in range(RUNS)]
    rng = random.Random(1234)
    workers = [spawn(project.root, "worker", "--poll", "0.05") for _ in range(2)]
    kills = 0
    deadline = time.monotonic() + 120
    effects_file = project.root / "effects.log"
    while kills < MIN_KILLS and time.monotonic() < deadline:
        # Kill while work is in flight: wait for fresh side effects, then a random moment more.
        seen = len(lines(effects_file))
        end = time.monotonic() + 3
        while len(lines(effects_file)) < seen + 5 and time.monotonic() < end:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))
        victim = rng.randrange(len(workers))
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait(timeout=10)
        kills += 1
        workers[victim] = spawn(project.root, "worker", "--poll", "0.05")
    try:
        wait_for(
            lambda: engine.store.list_runs(status="completed", limit=RUNS + 1).__len__() == RUNS,
            timeout=180,
            what="recovery",
        )
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.communicate(timeout=30)

    assert kills >= MIN_KILLS, f"only {kills} of the {MIN_KILLS} kills landed before the deadline"
    if project.store.exists():  # the SQLite file (on PostgreSQL the server keeps its own pages)
        with sqlite3.connect(project.store) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchall()
        assert integrity == [("ok",)], integrity
    runs = engine.store.list_runs(limit=RUNS + 1)
    assert len(runs) == RUNS and all(r.status == "completed" for r in runs)
    assert all(r.output == list(range(10)) for r in runs)
    completions = Counter()
    for run_id in ids:
        journal = engine.store.load_journal(run_id)
        assert sorted(r.tag for r in journal.values()) == [f"s{n}" for n in range(10)]
        for event in engine.history(run_id, types=["step_completed"]):
            completions[(run_id, event["step"])] += 1
    duplicates_recorded = sum(1 for c in completions.values() if c != 1)
    assert len(completions) == RUNS * 10 and duplicates_recorded == 0
    effects = Counter(lines(project.root / "effects.log"))
    assert len(effects) == RUNS * 10
    repeated = sum(count - 1 for count in effects.values())
    assert repeated <= kills, (repeated, kills)
    integrity = "ok" if project.store.exists() else "server"  # PostgreSQL checks its own pages
    durability_report(
        f"crash storm: runs={RUNS} kills={kills}/{MIN_KILLS} integrity={integrity} steps={RUNS * 10} re-executed={repeated} duplicates_recorded={duplicates_recorded}"
    )
