"""Waiting for SQLite's write lock without sleeping past its release (issue 19).

SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 … ms between tries, so a
writer queued behind a 50 µs commit can wait tens of milliseconds: that was the
tail of eight threads on one store (p99 ~165× p50) and why two worker processes
drained a queue slower than one. Instead:

* the threads of one process queue on one lock per store file (`gate_for`), which
  wakes the next waiter the moment it is released;
* across processes, store connections run with a busy timeout of 0 and `retry`
  tries again itself after short sleeps (50 µs, doubling, at most 1 ms, with
  jitter), for as long as the old busy timeout allowed (30 s).
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TypeVar

BUSY_TIMEOUT_S = 30.0
FIRST_PAUSE = 0.00005
LONGEST_PAUSE = 0.001

T = TypeVar("T")

_gates: dict[str, threading.RLock] = {}
_gates_lock = threading.Lock()


def gate_for(path: str) -> threading.RLock:
    """The lock every connection of this process to the store file `path` writes under."""
    key = path if path == ":memory:" else os.path.realpath(path)
    if key == ":memory:":
        return threading.RLock()  # an in-memory database belongs to one connection
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = threading.RLock()
        return gate


def is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def retry(attempt: Callable[[], T], timeout: float | None = None) -> T:
    """`attempt()`, tried again while another process holds the store's write lock.

    Raises the last busy error once `timeout` seconds (default `BUSY_TIMEOUT_S`) have passed.
    """
    pause = FIRST_PAUSE
    deadline: float | None = None
    while True:
        try:
            return attempt()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + (BUSY_TIMEOUT_S if timeout is None else timeout)
            elif now >= deadline:
                raise
        time.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, LONGEST_PAUSE)
