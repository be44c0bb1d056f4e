"""Waiting for SQLite's write lock without sleeping past its release (issue 19).

SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 … ms between tries, so a
writer queued behind a 50 µs commit can wait tens of milliseconds: that was the
tail of eight threads on one store (p99 ~165× p50) and why two worker processes
drained a queue slower than one. Instead:

* the threads of one process queue on one lock per store file (`gate_for`), which
  hands itself to the longest waiter the moment it is released;
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
from collections import deque
from collections.abc import Callable
from typing import TypeVar

BUSY_TIMEOUT_S = 30.0
FIRST_PAUSE = 0.00005
LONGEST_PAUSE = 0.001

T = TypeVar("T")


class Gate:
    """A reentrant lock that waiting threads get in arrival order.

    Python's own locks let the thread that releases take the lock straight back,
    so with eight writers some waited for dozens of commits; here `release` hands
    the lock to the longest waiter.
    """

    def __init__(self) -> None:
        self._state = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._waiters: deque[tuple[int, threading.Lock]] = deque()

    def acquire(self, timeout: float = -1) -> bool:
        me = threading.get_ident()
        with self._state:
            if self._owner == me:
                self._depth += 1
                return True
            if self._owner is None and not self._waiters:
                self._owner, self._depth = me, 1
                return True
            baton = threading.Lock()
            baton.acquire()
            self._waiters.append((me, baton))
        baton.acquire(timeout=timeout)
        with self._state:
            if self._owner == me:  # handed over, possibly just as the wait timed out
                return True
            self._waiters.remove((me, baton))
            return False

    def release(self) -> None:
        with self._state:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a store gate this thread does not hold")
            self._depth -= 1
            if self._depth:
                return
            if self._waiters:
                self._owner, baton = self._waiters.popleft()
                self._depth = 1
                baton.release()
            else:
                self._owner = None


_gates: dict[str, Gate] = {}
_gates_lock = threading.Lock()


def gate_for(path: str) -> Gate:
    """The lock every connection of this process to the store file `path` writes under."""
    key = path if path == ":memory:" else os.path.realpath(path)
    if key == ":memory:":
        return Gate()  # an in-memory database belongs to one connection
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = Gate()
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
