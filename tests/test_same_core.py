"""A lone `def` step and its event loop share one core; the loop's thread always gets its CPUs back."""

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
        with LOG.open("a") as f:
            f.write(json.dumps([tag, sorted(os.sched_getaffinity(0)), start, time.monotonic()]) + "\\n")
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
    monkeypatch.setattr(same_core, "_enabled", None)  # decided afresh under this test's env
    project.write("flows", FLOWS)
    return project


def calls(project) -> dict[str, tuple[list[int], float, float]]:
    rows = [json.loads(line) for line in (project.root / "cpus.log").read_text().splitlines()]
    return {tag: (cpus, start, end) for tag, cpus, start, end in rows}


def test_a_lone_step_runs_on_one_core_and_the_caller_gets_its_cpus_back(flows) -> None:
    before = os.sched_getaffinity(0)
    assert flows.engine().run("lone", {})["status"] == "completed"
    seen = calls(flows)
    assert all(len(cpus) == 1 for cpus, _, _ in seen.values()), seen
    assert os.sched_getaffinity(0) == before  # the loop ran on this thread


def test_parallel_steps_keep_every_core(flows) -> None:
    before = os.sched_getaffinity(0)
    result = flows.engine().run("fan", {})
    assert result["status"] == "completed", result
    seen = calls(flows)
    assert len(seen["first"][0]) == 1
    group = [seen[f"p{n}"] for n in range(3)]
    # They ran at once (0.3 s each), and all but the first to start ran on the whole CPU set.
    assert max(end for _, _, end in group) - min(start for _, start, _ in group) < 0.85
    assert sum(set(cpus) == before for cpus, _, _ in group) >= 2, group
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
        assert all(set(cpus) <= mine for cpus, _, _ in calls(flows).values())
    finally:
        os.sched_setaffinity(0, before)


@pytest.mark.parametrize(("setting", "held"), [(None, True), ("0", False)])
def test_ductape_run_holds_lone_steps_unless_ductape_same_core_is_0(flows, setting, held) -> None:
    env = ductape_subprocess_env(flows.root)
    env.pop("DUCTAPE_SAME_CORE", None)
    if setting is not None:
        env["DUCTAPE_SAME_CORE"] = setting
    done = subprocess.run(
        ductape_cmd("run", "lone", "--json"),
        cwd=flows.root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    everything = os.sched_getaffinity(0)
    assert [len(cpus) == 1 for cpus, _, _ in calls(flows).values()] == [held] * 3
    if not held:
        assert all(set(cpus) == everything for cpus, _, _ in calls(flows).values())


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
