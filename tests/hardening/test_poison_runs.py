"""Runs no worker can load back off, show why, fail after bounded tries, and resume once the code is back (item 4);
a store error that waiting cannot fix ends `worker --once` (item 5)."""

from __future__ import annotations

import os
import subprocess

from ductape_cli.config import load_config
from ductape_cli.engine.engine import LOAD_ATTEMPTS, Engine
from ductape_cli.engine.worker import Worker
from ductape_cli.testing.clock import VirtualClock
from tests.process.helpers import run as run_cli

GOOD = """
    from ductape_cli import workflow

    @workflow("good")
    async def good(ctx):
        return await ctx.step("one", lambda: 1)
"""

DOOMED = """
    from ductape_cli import workflow

    @workflow("doomed")
    async def doomed(ctx):
        return await ctx.step("one", lambda: "back")
"""


def _setup(project, doomed_runs: int = 1, good_runs: int = 5):
    project.write("good", GOOD)
    path = project.write("doomed", DOOMED)
    engine = project.engine()
    doomed = [engine.start("doomed", {}, detach=True)[0].id for _ in range(doomed_runs)]
    good = [engine.start("good", {}, detach=True)[0].id for _ in range(good_runs)]
    path.unlink()  # the tag's module is gone (renamed, removed, or failing to import)
    return doomed, good


def test_worker_once_exits_and_the_others_complete(project) -> None:
    doomed, good = _setup(project)
    result = run_cli(project.root, "worker", "--once", "--concurrency", "1", timeout=120)
    assert result.returncode == 0, result.stderr
    engine = project.engine()
    assert all(engine.get_run(i).status == "completed" for i in good)
    poisoned = engine.get_run(doomed[0])
    assert poisoned.status == "running" and poisoned.owner is None
    assert poisoned.load_attempts == 1 and "doomed" in (poisoned.load_error or "")
    status = run_cli(project.root, "status", doomed[0], "--json")
    assert '"kind": "unloadable"' in status.stdout and '"load_error"' in status.stdout
    assert "cannot load workflow" in result.stderr


def test_a_poison_run_backs_off_then_fails_and_resumes_when_the_code_is_back(project, cli) -> None:
    doomed, _ = _setup(project, good_runs=0)
    clock = VirtualClock()
    engine = Engine(load_config(project.root), clock=clock)
    gaps = []
    for _ in range(LOAD_ATTEMPTS):
        Worker(engine).run(once=True)
        run = engine.get_run(doomed[0])
        if run.status.terminal:
            break
        gaps.append(run.ready_at - clock.now())
        assert Worker(engine).run(once=True) == 0  # not due yet: nothing is claimed
        clock.advance(run.ready_at - clock.now() + 0.01)
    assert gaps == sorted(gaps) and gaps[0] >= 1.0 and len(gaps) == LOAD_ATTEMPTS - 1
    failed = engine.get_run(doomed[0])
    assert failed.status == "failed" and failed.error["code"] == "WORKFLOW_NOT_LOADABLE"
    assert failed.load_attempts == LOAD_ATTEMPTS
    project.write("doomed", DOOMED)  # the code is back
    resumed = cli("resume", doomed[0], "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.json()["output"] == "back"
    again = project.engine().get_run(doomed[0])
    assert again.load_error is None and again.load_attempts == 0


def test_worker_once_on_a_corrupt_store_exits_2(project) -> None:
    project.write("good", GOOD)
    engine = project.engine()
    engine.start("good", {}, detach=True)
    engine.close()
    for suffix in ("-wal", "-shm"):
        path = project.store.with_name(project.store.name + suffix)
        if path.exists():
            path.unlink()
    data = bytearray(project.store.read_bytes())
    data[100 : 4096 * 3] = os.urandom(4096 * 3 - 100)  # scribble over the schema pages
    project.store.write_bytes(bytes(data))
    try:
        result = run_cli(project.root, "worker", "--once", timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("worker --once kept retrying on a corrupt store") from None
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and str(project.store) in result.stderr


def test_worker_on_a_broken_store_backs_off_instead_of_spinning(project) -> None:
    import re
    import signal
    import threading
    import time

    from tests.process.helpers import spawn

    project.write("good", GOOD)
    project.store.parent.mkdir()
    project.store.write_bytes(b"this is not a database" * 1000)
    proc = spawn(project.root, "worker", "--poll", "0.05")
    lines: list[tuple[float, str]] = []  # (when it was read, the stderr line)
    assert proc.stderr is not None
    reader = threading.Thread(
        target=lambda: lines.extend((time.monotonic(), line) for line in proc.stderr or ()),
        daemon=True,
    )
    reader.start()

    def failures() -> list[tuple[float, str]]:
        return [(at, line) for at, line in list(lines) if "claim failed" in line]

    deadline = time.monotonic() + 30
    while len(failures()) < 4 and reader.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    reader.join(timeout=30)
    failed = failures()
    stderr = "".join(line for _, line in lines)
    assert len(failed) >= 4, stderr
    # 0.1, 0.2, 0.4 s apart (doubling from twice the poll interval), not every 50 ms.
    delays = [re.search(r"retrying in ([0-9.]+)s", line) for _, line in failed[:3]]
    assert [m.group(1) if m else None for m in delays] == ["0.1", "0.2", "0.4"], stderr
    assert failed[3][0] - failed[0][0] >= 0.6, stderr
