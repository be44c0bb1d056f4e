"""A paused owner must not keep executing a run another worker took over (issue 14, item 1).

Worker A is SIGSTOPped in the middle of a step, past its lease; worker B
takes the run over; then A is SIGCONTed. A writes nothing more for the run
and starts no further step: each step is recorded once, and after the
takeover only B executes the run.
"""

from __future__ import annotations

import signal

from tests.process.helpers import lines, pause_outside_writes, spawn, wait_for

LEASE_CONFIG = '\n[worker]\nlease = "3s"\n'

SLOW = """
    import os, time
    from pathlib import Path
    from ductape_cli import workflow

    LOG = Path(os.environ.get("DUCTAPE_PROJECT", ".")) / "effects.log"

    def mark(text):
        with LOG.open("a") as f:
            f.write(f"{text} {os.getpid()}\\n")

    def work(n):
        mark(f"start s{n}")
        time.sleep(1.0)
        mark(f"end s{n}")
        return n

    @workflow("slow")
    async def slow(ctx):
        return [await ctx.step(f"s{n}", lambda n=n: work(n)) for n in range(5)]
"""


def _stop(proc) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=60)[1]


def test_a_paused_owner_writes_nothing_after_another_worker_takes_over(
    project, durability_report
) -> None:
    with (project.root / "ductape.toml").open("a") as f:
        f.write(LEASE_CONFIG)
    project.write("slow", SLOW)
    engine = project.engine()
    run, _ = engine.start("slow", {}, detach=True)
    effects = project.root / "effects.log"
    a = spawn(project.root, "worker", "--poll", "0.1")
    b = None
    try:
        wait_for(
            lambda: any(line.startswith("start s1 ") for line in lines(effects)),
            timeout=60,
            what="A in step s1",
        )
        pause_outside_writes(a, project.store)
        events_before = engine.store.count_events(run.id)
        b = spawn(project.root, "worker", "--poll", "0.1")
        wait_for(
            lambda: any(line.endswith(f" {b.pid}") for line in lines(effects)),
            timeout=60,
            what="B to take over",
        )
        a.send_signal(signal.SIGCONT)
        wait_for(
            lambda: engine.get_run(run.id).status.terminal, timeout=60, what="the run to finish"
        )
    finally:
        a_err = _stop(a)
        b_err = _stop(b) if b is not None else ""
    finished = engine.get_run(run.id)
    assert finished.status == "completed" and finished.output == [0, 1, 2, 3, 4], (a_err, b_err)
    journal = engine.store.load_journal(run.id)
    assert sorted(r.tag for r in journal.values()) == [f"s{n}" for n in range(5)]
    log = [line.rsplit(" ", 1) for line in lines(effects)]
    took_over = next(i for i, (_, pid) in enumerate(log) if pid == str(b.pid))
    late = [text for text, pid in log[took_over:] if pid == str(a.pid) and text.startswith("start")]
    assert late == [], f"A started {late} after B took the run over:\n" + "\n".join(lines(effects))
    # Each step started at most once per worker, and only s1 (where A was paused) twice in all.
    starts = [text for text, _ in log if text.startswith("start")]
    assert sorted(starts) == sorted(
        ["start s0", "start s1", "start s1", "start s2", "start s3", "start s4"]
    )
    completed = [e for e in engine.history(run.id, types=["step_completed"])]
    assert sorted(e["step"] for e in completed) == [f"s{n}" for n in range(5)]
    assert f"{run.id} taken over by another owner" in a_err, a_err
    durability_report(
        f"lease fencing: owner paused past its lease; events before takeover={events_before}; "
        f"old owner started 0 steps after takeover; steps recorded once"
    )
