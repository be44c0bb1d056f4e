"""Waiting for SQLite's write lock without sleeping past its release (issue 19).

SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 … ms between tries, so a
writer queued behind a 50 µs commit can wait tens of milliseconds: that was the
tail of eight threads on one store (p99 ~165× p50) and why two worker processes
drained a queue slower than one. Instead:

* the threads of one process queue on one lock per store file (`gate_for`), which
  hands itself to the longest waiter the moment it is released;
* across processes, the gate's holder also holds an exclusive `flock` on a file
  beside the store (`state.db-gate`), so a process that finds another process
  writing sleeps in the kernel until that write ends and is woken then, instead
  of retrying: four workers on two cores spent 10-20% of a drain in retry sleeps
  that overshot the release;
* the file lock is only a way to wait: SQLite's write lock is still what excludes.
  Store connections run with a busy timeout of 0 and `retry` tries again itself
  after short sleeps (50 µs, doubling, at most 1 ms, with jitter), for as long as
  the old busy timeout allowed (30 s), when a writer that takes no file lock (the
  sqlite3 shell, another tool) holds the store, or the file lock is unavailable.
"""

from __future__ import annotations

import fcntl
import logging
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

log = logging.getLogger("ductape.store")
_held = (
    threading.local()
)  # how many file locks this thread holds (it waits for a second one only without blocking)


class Gate:
    """A reentrant lock that waiting threads get in arrival order, and (with `path`) other
    processes' gates for the same store too.

    Python's own locks let the thread that releases take the lock straight back,
    so with eight writers some waited for dozens of commits; here `release` hands
    the lock to the longest waiter. The file lock is taken by each new holder and
    let go at each full release, so a process does not keep it while its own
    threads queue and the other processes wait.
    """

    def __init__(self, path: str | None = None) -> None:
        self._state = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._waiters: deque[tuple[int, threading.Lock]] = deque()
        self._path = path  # the file locked across processes; None: this process only
        self._fd: int | None = None
        self._file_locked = False

    def acquire(self, timeout: float = -1) -> bool:
        """Take the gate (waiting up to `timeout` s for this process's other threads; -1: for ever).

        The wait for another process's write has no timeout of its own: it ends with that write,
        which SQLite's lock bounds (its `retry` gives up after `BUSY_TIMEOUT_S`).
        """
        me = threading.get_ident()
        with self._state:
            if self._owner == me:
                self._depth += 1
                return True
            taken = self._owner is None and not self._waiters
            if taken:
                self._owner, self._depth = me, 1
            else:
                baton = threading.Lock()
                baton.acquire()
                self._waiters.append((me, baton))
        if not taken:
            baton.acquire(timeout=timeout)
            with self._state:
                # Handed over, possibly just as the wait timed out?
                taken = self._owner == me
                if not taken:
                    self._waiters.remove((me, baton))
                    return False
        self._lock_file()
        return True

    def release(self) -> None:
        with self._state:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a store gate this thread does not hold")
            self._depth -= 1
            if self._depth:
                return
            self._unlock_file()
            if self._waiters:
                self._owner, baton = self._waiters.popleft()
                self._depth = 1
                baton.release()
            else:
                self._owner = None

    def _lock_file(self) -> None:
        """Wait for other processes' writes to this store (the new holder, outside `_state`: this
        process's other threads queue on the gate meanwhile)."""
        if self._path is None:
            return
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if getattr(_held, "count", 0):
                    # Holding another store's file lock: never wait for a second one (two processes
                    # could wait for each other); SQLite's lock and `retry` still decide.
                    return
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as exc:
            log.debug("store gate %s: no file lock (%s); retrying on busy instead", self._path, exc)
            self._path = None
            return
        self._file_locked = True
        _held.count = getattr(_held, "count", 0) + 1

    def _unlock_file(self) -> None:
        if not self._file_locked:
            return
        self._file_locked = False
        _held.count -= 1
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _forget_file(self) -> None:
        """In a forked child: drop the parent's descriptor (and so never hold its lock alive)."""
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._file_locked = None, False


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
            gate = _gates[key] = Gate(key + "-gate")
        return gate


def _after_fork() -> None:
    for gate in _gates.values():
        gate._forget_file()
    _held.count = 0


os.register_at_fork(after_in_child=_after_fork)


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
