"""Workers as separate processes: crash recovery of a sleeping run, and two workers sharing 50 runs."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter

from tests.process.helpers import lines, spawn, wait_for
from tests.process.helpers import run as run_cli

EFFECTS = """
    import os
    from pathlib import Path
    from ductape_cli import workflow

    LOG = Path(os.environ.get("DUCTAPE_PROJECT", ".")) / "effects.log"

    def effect(line):
        with LOG.open("a") as f:
            f.write(line + "\\n")
            f.flush()
        return line

    @workflow("nap")
    async def nap(ctx):
        await ctx.step("before", lambda: effect(f"{ctx.workflow_id}:before"))
        await ctx.sleep("2s")
        return await ctx.step("after", lambda: effect(f"{ctx.workflow_id}:after"))

    @workflow("three")
    async def three(ctx):
        for n in range(3):
            await ctx.step(f"s{n}", lambda n=n: effect(f"{ctx.workflow_id}:s{n}"))
        return "ok"
"""


def stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    return stderr


def test_worker_killed_while_a_run_sleeps_a_new_worker_wakes_it_on_time(project) -> None:
    project.write("effects", EFFECTS)
    engine = project.engine()
    run, _ = engine.start("nap", {}, detach=True)
    effects = project.root / "effects.log"
    first = spawn(project.root, "worker")
    wait_for(lambda: f"{run.id}:before" in lines(effects), what="the first step")
    wait_for(
        lambda: (engine.get_run(run.id).waiting or {}).get("kind") == "sleep",
        what="the run to sleep",
    )
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    wake_at = engine.store.load_journal(run.id)[1].wake_at
    second = spawn(project.root, "worker")
    try:
        wait_for(
            lambda: engine.get_run(run.id).status.terminal, timeout=30, what="the run to finish"
        )
    finally:
        stderr = stop(second)
    finished = engine.get_run(run.id)
    assert finished.status == "completed", stderr
    assert finished.ended_at >= wake_at
    assert finished.ended_at - wake_at < 2.0  # woken on time (polling granularity, not the lease)
    assert Counter(lines(effects)) == {f"{run.id}:before": 1, f"{run.id}:after": 1}
    assert "worker stopped" in stderr


def test_two_workers_and_fifty_detached_runs(project, durability_report) -> None:
    project.write("effects", EFFECTS)
    engine = project.engine()
    ids = [engine.start("three", {}, detach=True)[0].id for _ in range(50)]
    workers = [spawn(project.root, "worker", "--concurrency", "2") for _ in range(2)]
    try:
        wait_for(
            lambda: all(r.status.terminal for r in engine.list_runs(limit=100)),
            timeout=90,
            what="50 runs",
        )
    finally:
        errors = [stop(w) for w in workers]
    runs = engine.list_runs(limit=100)
    assert len(runs) == 50 and all(r.status == "completed" for r in runs), (
        errors,
        [(r.id, r.status, r.error) for r in runs if r.status != "completed"],
    )
    counts = Counter(lines(project.root / "effects.log"))
    assert len(counts) == 150 and set(counts.values()) == {1}, [
        k for k, v in counts.items() if v != 1
    ]
    for stderr in errors:
        assert "locked" not in stderr and "Traceback" not in stderr, stderr
    completions = sum(
        1 for run_id in ids for e in engine.history(run_id) if e["type"] == "workflow_completed"
    )
    assert completions == 50
    durability_report("two workers: runs=50 steps=150 duplicates=0")


def test_dispatch_in_one_second_fired_once_by_two_workers(project) -> None:
    project.write("effects", EFFECTS)
    dispatched = run_cli(project.root, "dispatch", "three", "--in", "1s", "--json")
    job_id = json.loads(dispatched.stdout)["job_id"]
    engine = project.engine()
    workers = [spawn(project.root, "worker") for _ in range(2)]
    try:
        wait_for(
            lambda: any(r.status.terminal for r in engine.list_runs(schedule_id=job_id)),
            timeout=30,
            what="the job",
        )
        time.sleep(0.5)  # give a second firing the chance to happen, if it were going to
    finally:
        for w in workers:
            stop(w)
    runs = engine.list_runs(schedule_id=job_id)
    assert len(runs) == 1 and runs[0].status == "completed"
    assert runs[0].created_at >= engine.store.get_schedule(job_id)["created_at"] + 1


def test_sigterm_finishes_the_current_step_and_releases_the_run(project) -> None:
    project.write(
        "slow",
        """
        import os, time
        from pathlib import Path
        from ductape_cli import workflow

        LOG = Path(os.environ.get("DUCTAPE_PROJECT", ".")) / "slow.log"

        def effect(n):
            with LOG.open("a") as f:
                f.write(f"start-{n}\\n")
            time.sleep(0.3)
            with LOG.open("a") as f:
                f.write(f"end-{n}\\n")
            return n

        @workflow("slow-steps")
        async def slow_steps(ctx):
            return [await ctx.step(f"s{n}", lambda n=n: effect(n)) for n in range(8)]
    """,
    )
    engine = project.engine()
    run, _ = engine.start("slow-steps", {}, detach=True)
    log = project.root / "slow.log"
    first = spawn(project.root, "worker")
    wait_for(lambda: "start-2" in lines(log), what="the third step")
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=30)
    assert first.returncode == 0 and "worker stopped" in stderr, stderr
    released = engine.get_run(run.id)
    assert (
        released.owner is None and released.status == "running"
    )  # released, not left to a lease expiry
    assert lines(log)[-1].startswith("end-")  # the step in flight finished before the worker exited
    second = spawn(project.root, "worker")
    try:
        wait_for(
            lambda: engine.get_run(run.id).status.terminal, timeout=30, what="the second worker"
        )
    finally:
        stop(second)
    assert engine.get_run(run.id).output == list(range(8))
    assert Counter(lines(log)) == Counter(
        [f"start-{n}" for n in range(8)] + [f"end-{n}" for n in range(8)]
    )
