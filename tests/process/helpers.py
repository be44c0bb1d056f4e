"""Helpers for process-level tests: run `python -m ductape_cli` in subprocesses and wait on files."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ductape_cmd, ductape_subprocess_env


def spawn(project_root: Path, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ductape_cmd(*args),
        cwd=project_root,
        env=ductape_subprocess_env(project_root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


def run(project_root: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ductape_cmd(*args),
        cwd=project_root,
        env=ductape_subprocess_env(project_root),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for(condition: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def pause_outside_writes(proc: subprocess.Popen[str], store: Path, attempts: int = 200) -> None:
    """SIGSTOP `proc` at a moment it holds no write lock on the SQLite `store`.

    A process stopped inside a write transaction blocks every other writer of the file until
    it resumes (SQLite's locks are the file's): a test of what others do while an owner is
    paused must pause it between writes, or it tests that instead.
    """
    if not store.exists():  # a PostgreSQL project: row locks, no file lock to hold
        proc.send_signal(signal.SIGSTOP)
        return
    for _ in range(attempts):
        proc.send_signal(signal.SIGSTOP)
        probe = sqlite3.connect(store, timeout=0.2, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.005)
        finally:
            probe.close()
    raise AssertionError("could not pause the process between two of its writes")
