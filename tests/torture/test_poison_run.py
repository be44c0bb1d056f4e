"""One run no worker can load, among 100: the other 99 complete under one single-threaded worker,
and the poison run is retried a handful of times, not thousands."""

from __future__ import annotations

import signal

from tests.process.helpers import spawn, wait_for

GOOD = """
    from ductape_cli import workflow

    @workflow("good")
    async def good(ctx):
        first = await ctx.step("one", lambda: 1)
        return await ctx.step("two", lambda: first + 1)
"""

DOOMED = """
    from ductape_cli import workflow

    @workflow("doomed")
    async def doomed(ctx):
        return await ctx.step("one", lambda: 1)
"""


def test_a_poison_run_does_not_starve_the_others(project, durability_report) -> None:
    project.write("good", GOOD)
    doomed_module = project.write("doomed", DOOMED)
    engine = project.engine()
    poison = engine.start("doomed", {}, detach=True)[0].id  # the oldest: first in line
    good = [engine.start("good", {}, detach=True)[0].id for _ in range(99)]
    doomed_module.write_text("raise ImportError('the payments SDK is not installed')\n")
    worker = spawn(project.root, "worker", "--concurrency", "1", "--poll", "0.05")
    try:
        wait_for(
            lambda: len(engine.store.list_runs(status="completed", limit=200)) == 99,
            timeout=180,
            what="99 good runs",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    assert all(engine.get_run(i).status == "completed" for i in good)
    stuck = engine.get_run(poison)
    assert stuck.status == "running" and stuck.owner is None
    assert "payments SDK" in (stuck.load_error or "")
    tries = stderr.count(f"{poison} doomed: cannot load workflow")
    assert 1 <= tries <= 10 and tries == stuck.load_attempts, stderr[-2000:]
    durability_report(
        f"poison run: 99/99 others completed under one worker; poison tried {tries} times, backing off"
    )
