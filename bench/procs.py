"""Whole-process timings: start a command, wait for it to exit, take the median wall time.

Output goes to a pipe (what scripts and CI see, and where ductape prints plain
text) or, for the "tty" rows, to a pseudo-terminal that is drained as it fills
(where ductape prints with rich).
"""

from __future__ import annotations

import os
import pty
import statistics
import subprocess
import sys
import time
from pathlib import Path


def ductape_argv() -> list[str]:
    """The installed console script beside this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "ductape"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ductape_cli"]


def _env(tty: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    env["PYTHONDONTWRITEBYTECODE"] = "0"
    env["TERM"] = "xterm-256color" if tty else env.get("TERM", "dumb")
    env["COLUMNS"] = "120"
    return env


def _once_pipe(argv: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    seconds = time.perf_counter() - start
    if done.returncode not in ok:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')[-800:]}"
        )
    return seconds


def _once_tty(argv: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...]) -> float:
    master, slave = pty.openpty()
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, close_fds=True
    )
    os.close(slave)
    tail = b""
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            tail = (tail + chunk)[-800:]
    finally:
        os.close(master)
    code = proc.wait()
    seconds = time.perf_counter() - start
    if code not in ok:
        raise RuntimeError(f"{' '.join(argv)} exited {code}: {tail.decode(errors='replace')}")
    return seconds


def timed(
    argv: list[str],
    cwd: Path,
    runs: int,
    *,
    tty: bool = False,
    warm_up: int = 1,
    ok: tuple[int, ...] = (0,),
) -> list[float]:
    """Wall seconds of `runs` runs of `argv` after `warm_up` untimed ones (bytecode caches, page cache)."""
    once = _once_tty if tty else _once_pipe
    env = _env(tty)
    for _ in range(warm_up):
        once(argv, cwd, env, ok)
    return [once(argv, cwd, env, ok) for _ in range(runs)]


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000
