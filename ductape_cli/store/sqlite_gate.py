"""Waiting for SQLite's write lock without sleeping past its release (issue 19).

SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 … ms between tries, so a
writer queued behind a 50 µs commit can wait tens of milliseconds: that was the
tail of eight threads on one store (p99 ~165× p50) and why two worker processes
drained a queue slower than one. Instead:

* the threads of one process queue on one lock per store file (`gate_for`), which
  hands itself to the longest waiter the moment it is released;
* the ductape processes of one host then queue in the kernel, on an advisory
  `flock` of `<store>-lock` (`HostLock`): a waiter tries for 200 µs, yielding
  the CPU between tries, then sleeps until the holder lets go and is woken
  then — no sleeping past the release, no spinning on the CPU the holder needs
  for longer than a transaction takes. The kernel drops the lock when its
  process dies, so a killed writer never leaves it behind;
* SQLite's own lock stays the one that guarantees one writer: store connections
  run with a busy timeout of 0 and `retry` tries again itself after short sleeps
  (50 µs, doubling, at most 1 ms, with jitter), for as long as the old busy
  timeout allowed (30 s). That covers writers that do not take the host lock
  (the `sqlite3` shell, a checkpoint, a backup) and a store on a file system
  where `flock` is refused.

Waiting for the host lock has no timeout: its holders hold it only for one write
transaction, so a wait outlasts that only while the holder is stopped (SIGSTOP,
a debugger) inside one — and then SQLite's lock would hold the writers up too.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

BUSY_TIMEOUT_S = 30.0
SPIN_BEFORE_SLEEP = 0.0002  # a waiter for the host lock tries this long before it sleeps
FIRST_PAUSE = 0.00005
LONGEST_PAUSE = 0.001

T = TypeVar("T")
log = logging.getLogger("ductape.store")


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

    @property
    def depth(self) -> int:
        """How often the owning thread holds the gate (read it only while holding it)."""
        return self._depth

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


class HostLock:
    """An exclusive `flock` on `<store>-lock`, taken by this process's gate holder while it writes.

    One descriptor per process and store file (`host_lock_for`); reopened after a fork,
    since a child sharing its parent's descriptor would share its lock too. Where the
    file cannot be opened (a read-only folder) or `flock` is refused, writers fall back
    to SQLite's lock and `retry` alone.
    """

    def __init__(self, path: str) -> None:
        self.path = path + "-lock"
        self._fd = -1
        self._pid = -1

    def acquire(self) -> None:
        fd = self._fd if self._pid == os.getpid() else self._open()
        if fd >= 0:
            try:
                if not _spin_for(fd):
                    fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                self._give_up(exc)

    def release(self) -> None:
        if self._fd >= 0 and self._pid == os.getpid():
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _open(self) -> int:
        self._pid = os.getpid()  # the parent's descriptor, if any, stays the parent's
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            self._give_up(exc)
        return self._fd

    def _give_up(self, exc: OSError) -> None:
        log.debug("no host write lock at %s (%s); waiting on SQLite's lock alone", self.path, exc)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = -1


def _spin_for(fd: int) -> bool:
    """Try the host lock for up to `SPIN_BEFORE_SLEEP`, yielding the CPU between tries.

    A write transaction lasts tens of microseconds, and waking a process that
    sleeps in `flock` costs about as much again on a virtual machine (measured
    ~50 µs for a thread ping-pong here), during which the lock stands idle.
    """
    give_up_at = time.perf_counter() + SPIN_BEFORE_SLEEP
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.perf_counter() >= give_up_at:
                return False
            os.sched_yield()


_gates: dict[str, Gate] = {}
_host_locks: dict[str, HostLock] = {}
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


def host_lock_for(path: str) -> HostLock | None:
    """The host-wide write lock of the store file `path` (None for an in-memory database)."""
    if path == ":memory:":
        return None
    key = os.path.realpath(path)
    with _gates_lock:
        lock = _host_locks.get(key)
        if lock is None:
            lock = _host_locks[key] = HostLock(key)
        return lock


def _jitter() -> float:
    import random  # only when busy: its import is start-up every `ductape run` would pay

    return random.random()


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
        time.sleep(pause * (0.5 + _jitter()))
        pause = min(pause * 2, LONGEST_PAUSE)
