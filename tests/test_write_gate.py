"""Writers wait for the store's write lock without SQLite's sleeping busy handler (issue 19):
threads of a process queue on one gate per store file, other processes are retried in short steps."""

from __future__ import annotations

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
