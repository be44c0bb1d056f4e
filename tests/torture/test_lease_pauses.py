"""Lease fencing under pressure: workers SIGSTOPped past their leases again and again.

Three workers share 60 runs of a 6-step workflow with a 3 s lease. One worker
at a time is paused for longer than the lease (another takes its run over),
resumed for a moment, then retired and replaced. Afterwards every run completed with every step recorded once,
and no run ever had two processes executing steps at the same time: a step
a paused owner started is the only one that may overlap, and after a
takeover the old owner starts no further step of that run.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from collections import defaultdict

from tests.process.helpers import lines, spawn, wait_for

RUNS = int(os.environ.get("DUCTAPE_TORTURE_PAUSE_RUNS", "60"))
PAUSES = int(os.environ.get("DUCTAPE_TORTURE_PAUSES", "4"))

WORKFLOW = """
    import os, time
    from pathlib import Path
    from ductape_cli import workflow

    LOG = Path(os.environ.get("DUCTAPE_PROJECT", ".")) / "effects.log"

    def mark(run_id, what, n):
        with LOG.open("a") as f:
            f.write(f"{time.monotonic():.6f} {os.getpid()} {run_id} {what} {n}\\n")

    def work(run_id, n):
        mark(run_id, "start", n)
        time.sleep(0.2)
        mark(run_id, "end", n)
        return n

    @workflow("paced")
    async def paced(ctx):
        return [await ctx.step(f"s{n}", lambda n=n: work(ctx.workflow_id, n)) for n in range(6)]
"""


def test_paused_owners_never_execute_alongside_the_worker_that_took_over(
    project, durability_report
) -> None:
    with (project.root / "ductape.toml").open("a") as f:
        f.write('\n[worker]\nlease = "3s"\n')
    project.write("paced", WORKFLOW)
    engine = project.engine()
    ids = [engine.start("paced", {}, detach=True)[0].id for _ in range(RUNS)]
    effects = project.root / "effects.log"
    workers = [spawn(project.root, "worker", "--poll", "0.1") for _ in range(3)]
    rng = random.Random(14)
    pauses = 0
    try:
        deadline = time.monotonic() + 240
        while pauses < PAUSES and time.monotonic() < deadline:
            index = rng.randrange(len(workers))
            victim = workers[index]
            marker = f" {victim.pid} "
            wait_for(
                lambda marker=marker: any(marker in line for line in lines(effects)[-20:]),
                timeout=60,
                what="work",
            )
            victim.send_signal(signal.SIGSTOP)
            time.sleep(3 + 3 / 3 + 1.5)  # past the lease, the takeover grace and a poll
            victim.send_signal(signal.SIGCONT)
            pauses += 1
            time.sleep(1.5)  # the resumed owner's chance to misbehave
            # Retire it, so a process that lost a run never legitimately wins it back later.
            victim.send_signal(signal.SIGTERM)
            victim.communicate(timeout=60)
            workers[index] = spawn(project.root, "worker", "--poll", "0.1")
            if all(r.status.terminal for r in engine.store.list_runs(limit=RUNS + 1)):
                break
        wait_for(
            lambda: all(r.status.terminal for r in engine.store.list_runs(limit=RUNS + 1)),
            timeout=240,
            what="all runs",
        )
    finally:
        for w in workers:
            w.send_signal(signal.SIGCONT)
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.communicate(timeout=60)

    assert pauses >= min(PAUSES, 3), f"only {pauses} pauses happened"
    runs = engine.store.list_runs(limit=RUNS + 1)
    assert len(runs) == RUNS and all(r.status == "completed" for r in runs), [
        (r.id, r.status, r.error) for r in runs
    ]
    assert all(r.output == list(range(6)) for r in runs)
    for run_id in ids:
        assert sorted(r.tag for r in engine.store.load_journal(run_id).values()) == [
            f"s{n}" for n in range(6)
        ]
    if project.store.exists():  # the SQLite file (on PostgreSQL the server keeps its own pages)
        with sqlite3.connect(project.store) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    # Per run, in time order: once a second process starts a step, the first starts none again
    # (each paused worker is retired after its pause, so it cannot legitimately win a run back).
    starts: dict[str, list[tuple[float, str, int]]] = defaultdict(list)
    for line in lines(effects):
        stamp, pid, run_id, what, n = line.split()
        if what == "start":
            starts[run_id].append((float(stamp), pid, int(n)))
    takeovers = 0
    for run_id, events in starts.items():
        events.sort()
        retired: set[str] = set()
        current = None
        for _, pid, n in events:
            assert pid not in retired, (
                f"{run_id}: process {pid} started s{n} after losing the run: {events}"
            )
            if current is not None and pid != current:
                retired.add(current)
                takeovers += 1
            current = pid
    assert takeovers >= 1, "no pause ever led to a takeover"
    durability_report(
        f"lease pauses: runs={RUNS} pauses={pauses} takeovers={takeovers} concurrent_executions=0"
    )
