"""A lone `def` step's hand-offs stay on one core: the loop's thread is held there while the step
runs (and always gets its CPUs back), the step itself runs on every core it may."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import pytest

from ductape_cli.engine import same_core
from tests.conftest import ductape_cmd, ductape_subprocess_env

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs sched_setaffinity and two CPUs to tell a held thread from a free one",
)

FLOWS = """
    import json, os, time
    from pathlib import Path
    from ductape_cli import workflow

    LOG = Path(os.environ["DUCTAPE_PROJECT"]) / "cpus.log"

    def where(tag, nap=0.0):
        start = time.monotonic()
        time.sleep(nap)
        loop = int(os.environ.get("LOOP_TID") or os.getpid())  # the thread that runs the loop
        row = [tag, sorted(os.sched_getaffinity(loop)), sorted(os.sched_getaffinity(0)), start, time.monotonic()]
        with LOG.open("a") as f:
            f.write(json.dumps(row) + "\\n")
        return tag

    @workflow("lone")
    async def lone(ctx):
        for n in range(3):
            await ctx.step(f"s{n}", lambda n=n: where(f"s{n}"))
        return "ok"

    @workflow("fan")
    async def fan(ctx):
        await ctx.step("first", lambda: where("first"))
        return await ctx.parallel([ctx.step(f"p{n}", lambda n=n: where(f"p{n}", 0.3)) for n in range(3)])

    @workflow("late")
    async def late(ctx):
        await ctx.step("slow", lambda: where("slow", 1.0), timeout="100ms", allow_fail=True)
        return "ok"
"""


@pytest.fixture
def flows(project, monkeypatch):
    monkeypatch.setenv("DUCTAPE_PROJECT", str(project.root))
    monkeypatch.setenv("LOOP_TID", str(threading.get_native_id()))  # Engine.run loops here
    monkeypatch.setattr(same_core, "_enabled", None)  # decided afresh under this test's env
    project.write("flows", FLOWS)
    return project


class Call:
    def __init__(self, loop: list[int], own: list[int], start: float, end: float) -> None:
        self.loop, self.own, self.start, self.end = set(loop), set(own), start, end


def calls(project) -> dict[str, Call]:
    rows = [json.loads(line) for line in (project.root / "cpus.log").read_text().splitlines()]
    return {tag: Call(*rest) for tag, *rest in rows}


def test_a_lone_step_holds_the_loop_to_one_core_and_runs_free(flows) -> None:
    before = os.sched_getaffinity(0)
    assert flows.engine().run("lone", {})["status"] == "completed"
    seen = calls(flows)
    assert all(len(call.loop) == 1 for call in seen.values()), vars(seen["s0"])
    assert all(call.own == before for call in seen.values())  # the step itself: any core
    assert os.sched_getaffinity(0) == before  # the loop ran on this thread


def test_parallel_steps_let_the_loop_go(flows) -> None:
    before = os.sched_getaffinity(0)
    result = flows.engine().run("fan", {})
    assert result["status"] == "completed", result
    seen = calls(flows)
    assert len(seen["first"].loop) == 1
    group = [seen[f"p{n}"] for n in range(3)]
    # They ran at once (0.3 s each), on every core, with the loop's thread let go.
    assert max(c.end for c in group) - min(c.start for c in group) < 0.85
    assert all(c.loop == before and c.own == before for c in group), [vars(c) for c in group]
    assert os.sched_getaffinity(0) == before


def test_a_step_that_times_out_leaves_the_caller_free(flows) -> None:
    before = os.sched_getaffinity(0)
    assert flows.engine().run("late", {})["status"] == "completed"
    assert os.sched_getaffinity(0) == before


def test_the_caller_keeps_a_cpu_set_of_its_own(flows) -> None:
    """A process held to some of its CPUs (taskset, a cpuset) gets exactly those back."""
    before = os.sched_getaffinity(0)
    mine = set(sorted(before)[:2])
    os.sched_setaffinity(0, mine)
    try:
        assert flows.engine().run("lone", {})["status"] == "completed"
        assert os.sched_getaffinity(0) == mine
        seen = calls(flows).values()
        assert all(len(c.loop) == 1 and c.loop <= mine and c.own == mine for c in seen)
    finally:
        os.sched_setaffinity(0, before)


@pytest.mark.parametrize(("setting", "held"), [(None, True), ("0", False)])
def test_ductape_run_holds_lone_steps_unless_ductape_same_core_is_0(flows, setting, held) -> None:
    env = ductape_subprocess_env(flows.root)
    env.pop("DUCTAPE_SAME_CORE", None)
    if setting is not None:
        env["DUCTAPE_SAME_CORE"] = setting
    env.pop("LOOP_TID", None)  # `ductape run` loops on its main thread
    done = subprocess.run(
        ductape_cmd("run", "lone", "--json"),
        cwd=flows.root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    everything = os.sched_getaffinity(0)
    seen = calls(flows).values()
    assert [len(call.loop) == 1 for call in seen] == [held] * 3
    assert all(call.own == everything for call in seen)


def test_refused_affinity_means_steps_run_anywhere(flows, monkeypatch) -> None:
    def refuse(pid: int, mask: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    assert flows.engine().run("lone", {})["status"] == "completed"
    assert same_core._enabled is False
    assert len(calls(flows)) == 3


def test_threads_of_their_own_keep_their_own_sets(flows) -> None:
    """Two threads running workflows at once: each gets back what it had."""
    before = os.sched_getaffinity(0)
    engine = flows.engine()
    results: list[object] = []

    def drive() -> None:
        for _ in range(5):
            results.append(engine.run("lone", {})["status"])
        results.append(os.sched_getaffinity(0))

    threads = [threading.Thread(target=drive) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results.count("completed") == 10 and results.count(before) == 2, results
    time.sleep(0)  # nothing else holds this thread
    assert os.sched_getaffinity(0) == before


def test_the_core_is_read_from_proc_then_from_libc(monkeypatch) -> None:
    """A short `ductape run` reads /proc; a long-lived process switches to libc's sched_getcpu."""
    monkeypatch.setattr(same_core, "_getcpu", None)
    monkeypatch.setattr(same_core, "_reads", 0)
    mine = os.sched_getaffinity(0)
    assert same_core._current_cpu() in mine
    assert same_core._getcpu is None
    for _ in range(same_core.READS_BEFORE_CTYPES):
        assert same_core._current_cpu() in mine
    assert same_core._getcpu is not None and same_core._current_cpu() in mine
