"""Writers wait for the store's write lock without SQLite's sleeping busy handler (issue 19):
threads of a process queue on one gate per store file, processes of one host on a `flock`, and
anything else holding SQLite's lock is retried in short steps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ductape_cli.errors import StoreError
from ductape_cli.models import OpKind, Run, RunStatus, StepRecord, StepStatus
from ductape_cli.store import open_store, sqlite_gate

HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def step(run_id: str, seq: int) -> StepRecord:
    return StepRecord(
        run_id=run_id,
        seq=seq,
        kind=OpKind.STEP,
        tag=f"s{seq}",
        status=StepStatus.COMPLETED,
        output=seq,
    )


def new_run(store: object, run_id: str) -> None:
    now = time.time()
    store.create_run(
        Run(id=run_id, tag="t", status=RunStatus.RUNNING, input={}, created_at=now, ready_at=now),
        [],
    )  # type: ignore[attr-defined]


def test_connections_leave_waiting_to_the_gate(tmp_path: Path) -> None:
    a, b = open_store(str(tmp_path / "s.db")), open_store(str(tmp_path / "s.db"))
    assert a.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0
    assert a._gate is b._gate  # one gate per file and process
    assert open_store(":memory:")._gate is not open_store(":memory:")._gate


def test_eight_threads_with_their_own_connections_all_commit(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    new_run(open_store(path), "wf_1")
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        store = open_store(path)
        try:
            for i in range(100):
                store.commit_step(step("wf_1", index * 1000 + i), [])  # the lone-INSERT path
                store.append_events(
                    "wf_1", [(time.time(), "tick", None, None)]
                )  # BEGIN IMMEDIATE path
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = open_store(path)
    assert len(store.load_journal("wf_1")) == 800
    assert store.count_events("wf_1") == 800


def test_a_write_waits_for_another_process_to_release_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = open_store(str(path))
    new_run(store, "wf_1")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), "0.5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        store.commit_step(
            step("wf_1", 1), []
        )  # busy_timeout is 0: without the retry this fails at once
        store.append_events("wf_1", [(time.time(), "tick", None, None)])
    finally:
        holder.wait(timeout=60)
    assert holder.returncode == 0
    assert list(store.load_journal("wf_1")) == [1]


def test_a_lock_held_past_the_timeout_is_a_clear_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.db"
    store = open_store(str(path))
    new_run(store, "wf_1")
    monkeypatch.setattr(sqlite_gate, "BUSY_TIMEOUT_S", 0.2)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), "5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match="stayed busy"):
            store.append_events("wf_1", [(time.time(), "tick", None, None)])
        with pytest.raises(StoreError, match="stayed busy"):
            store.commit_step(step("wf_1", 1), [])
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert store.load_journal("wf_1") == {} and store.count_events("wf_1") == 0


def test_the_gate_serves_waiting_threads_in_arrival_order() -> None:
    gate = sqlite_gate.Gate()
    assert gate.acquire() and gate.acquire()  # reentrant
    gate.release()
    order: list[int] = []
    queued = threading.Semaphore(0)

    def waiter(index: int) -> None:
        queued.release()
        assert gate.acquire(timeout=30)
        order.append(index)
        gate.release()

    threads = []
    for index in range(5):
        thread = threading.Thread(target=waiter, args=(index,))
        thread.start()
        queued.acquire()
        while len(gate._waiters) < index + 1:  # each waits before the next arrives
            time.sleep(0.001)
        threads.append(thread)
    gate.release()
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError):
        gate.release()


def test_a_gate_wait_that_times_out_leaves_the_queue() -> None:
    gate = sqlite_gate.Gate()
    gate.acquire()
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(gate.acquire(timeout=0.05)))
    thread.start()
    thread.join()
    assert result == [False] and not gate._waiters
    gate.release()
    assert gate.acquire(timeout=0) is True  # free again, nobody queued
    gate.release()


HOLD_HOST_LOCK = """
import sys, time
from ductape_cli.store.sqlite_gate import host_lock_for
lock = host_lock_for(sys.argv[1])
lock.acquire()
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
lock.release()
"""


def _hold_host_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_HOST_LOCK, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_processes_of_one_host_queue_on_the_host_lock(tmp_path: Path) -> None:
    """Another ductape process writing: our write waits in the kernel until it lets go, then commits."""
    path = tmp_path / "s.db"
    store = open_store(str(path))
    new_run(store, "wf_1")
    holder = _hold_host_lock(path, 0.5)
    try:
        began = time.monotonic()
        store.commit_step(step("wf_1", 1), [])
        waited = time.monotonic() - began
    finally:
        holder.wait(timeout=60)
    assert holder.returncode == 0
    assert waited >= 0.3  # it did wait for the holder (which held the lock for 0.5 s)
    assert list(store.load_journal("wf_1")) == [1]


def test_a_killed_holder_leaves_no_host_lock_behind(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = open_store(str(path))
    new_run(store, "wf_1")
    holder = _hold_host_lock(path, 600)
    threading.Timer(0.3, holder.kill).start()
    try:
        # Returns once the kernel drops the dead holder's lock.
        store.commit_step(step("wf_1", 1), [])
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert list(store.load_journal("wf_1")) == [1]


def test_a_store_where_flock_is_refused_falls_back_to_sqlites_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(fd: int, op: int) -> None:
        raise OSError(37, "No locks available")

    monkeypatch.setattr(sqlite_gate.fcntl, "flock", refused)
    store = open_store(str(tmp_path / "s.db"))
    new_run(store, "wf_1")
    store.commit_step(step("wf_1", 1), [])
    assert list(store.load_journal("wf_1")) == [1]


def test_a_forked_child_takes_the_host_lock_on_its_own_descriptor(tmp_path: Path) -> None:
    """A child sharing its parent's descriptor would share its lock: it reopens the file instead."""
    path = tmp_path / "s.db"
    lock = sqlite_gate.host_lock_for(str(path))
    assert lock is not None
    lock.acquire()
    try:
        pid = os.fork()
        if (
            pid == 0
        ):  # the child: its acquire must wait for the parent (here: until SIGALRM, 0.2 s on)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            lock.acquire()
            os._exit(1)  # taken at once: it shared the parent's lock
        _, status = os.waitpid(pid, 0)
    finally:
        lock.release()
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM
