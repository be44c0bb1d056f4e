"""A worker beyond `[worker] active_per_host` stands by, and takes over when the active one dies."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from typing import Any

from tests.conftest import ductape_cmd, ductape_subprocess_env
from tests.process.helpers import lines, pause_outside_writes, wait_for

CONFIG = "\n[worker]\nactive_per_host = 1\njoin_when_idle = false\n"

SLOW = """
    import os, time
    from pathlib import Path
    from ductape_cli import workflow

    LOG = Path(os.environ.get("DUCTAPE_PROJECT", ".")) / "effects.log"

    def effect(line):
        time.sleep(0.15)
        with LOG.open("a") as f:
            f.write(f"{os.getpid()} {line}\\n")
        return line

    @workflow("slow5")
    async def slow5(ctx):
        for n in range(5):
            await ctx.step(f"s{n}", lambda n=n: effect(f"{ctx.workflow_id}:s{n}"))
        return "ok"

    @workflow("slow3")
    async def slow3(ctx):
        for n in range(3):
            await ctx.step(f"s{n}", lambda n=n: effect(f"{ctx.workflow_id}:s{n}"))
        return "ok"
"""


class Workers:
    """`ductape worker` processes of one project, each writing to its own log file."""

    def __init__(self, project) -> None:
        self.project = project
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Any] = []

    def start(self, log_name: str) -> subprocess.Popen[bytes]:
        log = (self.project.root / log_name).open("w")
        self.logs.append(log)
        self.procs.append(
            subprocess.Popen(
                ductape_cmd("worker", "--poll", "0.1"),
                cwd=self.project.root,
                env=ductape_subprocess_env(self.project.root),
                stdout=log,
                stderr=log,
            )
        )
        return self.procs[-1]

    def stop(self) -> None:
        """Resume and stop whichever still runs (SIGTERM: a clean stop), then close the logs."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.wait(timeout=30)
        for log in self.logs:
            log.close()


def test_the_second_worker_stands_by_then_takes_over_from_a_killed_one(project) -> None:
    with (project.root / "ductape.toml").open("a") as f:
        f.write(CONFIG)
    project.write("slow", SLOW)
    engine = project.engine()
    ids = [engine.start("slow3", {}, detach=True)[0].id for _ in range(4)]
    effects = project.root / "effects.log"
    workers = Workers(project)
    try:
        first = workers.start("first.log")
        wait_for(lambda: lines(effects), what="the first worker's first step")
        second = workers.start("second.log")
        wait_for(
            lambda: "standing by" in (project.root / "second.log").read_text(),
            what="the second worker to stand by",
        )
        before_kill = len(lines(effects))
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        wait_for(
            lambda: all(engine.get_run(i).status.terminal for i in ids),
            timeout=60,
            what="every run to finish",
        )
    finally:
        workers.stop()
    second_text = (project.root / "second.log").read_text()
    assert [engine.get_run(i).status for i in ids] == ["completed"] * 4, second_text
    pids = [line.split()[0] for line in lines(effects)]
    # The second worker ran nothing while the first was alive, then everything that was left.
    assert set(pids[:before_kill]) == {str(first.pid)}
    assert pids[before_kill:] and set(pids[before_kill:]) <= {str(first.pid), str(second.pid)}
    assert pids[-1] == str(second.pid)
    counts = Counter(line.split()[1] for line in lines(effects))
    assert set(counts) == {f"{i}:s{n}" for i in ids for n in range(3)}
    # at most the step in flight when the first worker died ran twice
    assert sum(c - 1 for c in counts.values()) <= 1, counts
    assert "taking runs again" in second_text and "Traceback" not in second_text


def test_a_standing_by_worker_takes_over_from_a_paused_one_when_its_lease_goes_stale(
    project,
) -> None:
    """A stopped (not dead) worker keeps its slot; its stale leases still get taken over."""
    with (project.root / "ductape.toml").open("a") as f:
        f.write(CONFIG.replace("[worker]\n", '[worker]\nlease = "3s"\n'))
    project.write("slow", SLOW)
    engine = project.engine()
    run, _ = engine.start("slow5", {}, detach=True)
    effects = project.root / "effects.log"
    workers = Workers(project)
    try:
        first = workers.start("first.log")
        wait_for(lambda: lines(effects), what="the first worker's first step")
        pause_outside_writes(first, project.store)
        second = workers.start("second.log")
        wait_for(
            lambda: engine.get_run(run.id).status.terminal, timeout=60, what="the run to finish"
        )
    finally:
        workers.stop()
    second_text = (project.root / "second.log").read_text()
    assert engine.get_run(run.id).status == "completed", second_text
    assert "standing by" in second_text, second_text
    assert str(second.pid) in {line.split()[0] for line in lines(effects)}
