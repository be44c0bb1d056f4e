"""A worker whose clock is stepped forward neither steals live runs nor fires schedules early (item 3)."""

from __future__ import annotations

import time

from ductape_cli.config import load_config
from ductape_cli.engine import schedules
from ductape_cli.engine.clock import SteadyTime, SystemClock
from ductape_cli.engine.engine import Engine
from ductape_cli.engine.worker import Worker

SAMPLE = """
    from ductape_cli import workflow

    @workflow("job")
    async def job(ctx):
        return await ctx.step("work", lambda: "done")
"""


class SteppingClock(SystemClock):
    """The system clock, plus an offset a test can step (as NTP or an operator would)."""

    offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


def test_steady_time_ignores_a_forward_step_and_follows_a_backward_one() -> None:
    wall, mono = [1000.0], [50.0]
    steady = SteadyTime(wall=lambda: wall[0], mono=lambda: mono[0])
    mono[0] += 5
    wall[0] += 5
    assert steady.now() == 1005.0
    wall[0] += 3600  # stepped forward
    assert steady.now() == 1005.0 and steady.ahead == 3600
    mono[0] += 1
    assert steady.now() == 1006.0
    wall[0] = 900.0  # stepped back
    assert steady.now() == 900.0
    mono[0] += 2
    wall[0] += 2
    assert steady.now() == 902.0


def test_a_forward_step_neither_steals_a_live_run_nor_fires_a_schedule_early(project) -> None:
    project.write("job", SAMPLE)
    clock = SteppingClock()
    engine = Engine(load_config(project.root), clock=clock)
    live, _ = engine.start("job", {}, detach=True)
    # A live worker elsewhere holds it, renewing its 30 s lease.
    engine.store.claim_run(live.id, "elsewhere:1:x", time.time(), 30)
    schedules.create(engine, "job", {}, in_="10m")
    worker = Worker(engine)
    clock.offset = 3600.0  # this host's clock jumps an hour ahead
    assert worker.run(once=True) == 0
    assert engine.get_run(live.id).owner == "elsewhere:1:x"
    assert engine.store.list_schedules()[0]["fire_count"] == 0
    assert engine.store.count_runs() == 1


def test_an_expired_lease_is_taken_only_after_watching_it_go_unrenewed(project) -> None:
    project.write("job", SAMPLE)
    engine = project.engine()
    engine.lease_ttl = 3.0
    run, _ = engine.start("job", {}, detach=True)
    engine.store.claim_run(run.id, "elsewhere:1:x", time.time() - 10, 3)  # expired 7 s ago
    worker = Worker(engine)
    assert worker.run(once=True) == 0  # first sight: watched, not taken
    worker._watched = {
        key: since - 1.1 for key, since in worker._watched.items()
    }  # a third of the lease passes
    assert worker.run(once=True) == 1
    assert engine.get_run(run.id).status == "completed"
