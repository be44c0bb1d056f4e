"""The SQLite store: schema versioning, WAL, claims, idempotency, signals, bad files."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from ductape_cli.errors import RunIdTaken, StepTaken, StoreError
from ductape_cli.models import OpKind, Run, RunStatus, StepRecord, StepStatus
from ductape_cli.store import open_store
from ductape_cli.store.migrations import MIGRATIONS
from ductape_cli.store.sqlite import FULL_AUTOCHECKPOINT_PAGES


def make_run(run_id: str = "wf_1", **fields: object) -> Run:
    now = time.time()
    base = dict(
        id=run_id, tag="t", status=RunStatus.RUNNING, input={"a": 1}, created_at=now, ready_at=now
    )
    base.update(fields)
    return Run(**base)  # type: ignore[arg-type]


def test_new_store_is_wal_and_fully_migrated(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_full_durability_sets_synchronous_full(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"), durability="full")
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def wal_bytes_after_steps(path: Path, durability: str) -> int:
    """The WAL file's size after 300 committed steps of ~8 KB output (about 900 WAL frames)."""
    store = open_store(str(path), durability=durability)
    store.create_run(make_run(), [])
    for seq in range(300):
        record = StepRecord(
            "wf_1", seq, OpKind.STEP, f"s{seq}", StepStatus.COMPLETED, output="x" * 8000
        )
        store.commit_step(record, [])
    size = path.with_name(path.name + "-wal").stat().st_size
    store.close()
    assert len(open_store(str(path), durability=durability).load_journal("wf_1")) == 300
    return size


def test_full_durability_starts_the_wal_over_every_megabyte(tmp_path: Path) -> None:
    # Under "full" each commit fsyncs the WAL; rewriting a file is cheaper to fsync than growing it.
    frame = 4096 + 24
    full = wal_bytes_after_steps(tmp_path / "full.db", "full")
    normal = wal_bytes_after_steps(tmp_path / "normal.db", "normal")
    assert full <= (FULL_AUTOCHECKPOINT_PAGES + 16) * frame
    assert (
        normal > 3 * FULL_AUTOCHECKPOINT_PAGES * frame
    )  # the keeper, not the writer, checkpoints those


def test_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    open_store(str(tmp_path / "s.db")).create_run(make_run(), [])
    store = open_store(str(tmp_path / "s.db"))
    assert store.get_run("wf_1") is not None


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    open_store(str(path)).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this ductape"):
        open_store(str(path))


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="corrupt or not a ductape store"):
        open_store(str(path))


def test_folder_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create store folder"):
        open_store(str(blocker / "sub" / "s.db"))


def test_idempotency_key_returns_existing_run(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    first, created = store.create_run(make_run("wf_a", idempotency_key="k"), [])
    second, created_again = store.create_run(make_run("wf_b", idempotency_key="k"), [])
    assert created and not created_again
    assert second.id == "wf_a"
    assert store.count_runs() == 1


def test_taken_run_id_raises_run_id_taken(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    store.create_run(make_run("wf_a"), [])
    with pytest.raises(RunIdTaken):
        store.create_run(make_run("wf_a"), [])


def test_claim_respects_live_leases_and_dead_owners(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    now = time.time()
    store.create_run(make_run(owner="host:1:a", lease_expires_at=now + 30), [])
    assert store.claim_run("wf_1", "me", now, 30) is None
    assert store.claim_run("wf_1", "me", now, 30, dead_owners=["host:1:a"]) is not None
    assert store.get_run("wf_1").owner == "me"  # type: ignore[union-attr]
    assert store.claim_run("wf_1", "other", now + 31, 30) is not None  # expired lease


def test_claim_ready_takes_each_run_once(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    for i in range(5):
        store.create_run(make_run(f"wf_{i}", status=RunStatus.PENDING), [])
    now = time.time() + 1
    first = store.claim_ready("w1", now, 30, 3)
    second = store.claim_ready("w2", now, 30, 3)
    assert len(first) == 3 and len(second) == 2
    assert not {r.id for r in first} & {r.id for r in second}


def test_commit_step_refuses_a_second_record_of_the_same_position(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    store.create_run(make_run(), [])
    record = StepRecord("wf_1", 0, OpKind.STEP, "a", StepStatus.COMPLETED, output={"x": 1})
    store.commit_step(record, [(time.time(), "step_completed", "a", None)])
    with pytest.raises(StepTaken):
        store.commit_step(record, [])
    assert store.load_journal("wf_1")[0].output == {"x": 1}
    assert len(store.events("wf_1")) == 1  # the refused commit wrote nothing


def test_signals_are_buffered_and_consumed_in_order(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    store.create_run(make_run(), [])
    now = time.time()
    store.add_signal("wf_1", "go", {"n": 1}, now)
    store.add_signal("wf_1", "go", {"n": 2}, now)
    store.commit_step(StepRecord("wf_1", 0, OpKind.SIGNAL, "go", StepStatus.WAITING), [])
    store.commit_step(StepRecord("wf_1", 1, OpKind.SIGNAL, "go", StepStatus.WAITING), [])
    assert store.consume_signal("wf_1", 0, ["go"], now, "signal_received").payload == {"n": 1}  # type: ignore[union-attr]
    assert store.consume_signal("wf_1", 1, ["go"], now, "signal_received").payload == {"n": 2}  # type: ignore[union-attr]
    assert store.consume_signal("wf_1", 2, ["go"], now, "signal_received") is None


def test_signal_for_a_finished_run_is_not_stored(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    store.create_run(make_run(status=RunStatus.COMPLETED), [])
    run = store.add_signal("wf_1", "go", {}, time.time())
    assert run is not None and run.status == RunStatus.COMPLETED
    assert store.signals("wf_1") == []


def test_suspend_sees_a_signal_that_arrived_meanwhile(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    store.create_run(make_run(owner="me", lease="L1", lease_expires_at=time.time() + 30), [])
    store.add_signal("wf_1", "go", {}, time.time())  # arrives before the run says it waits
    now = time.time()
    ready = store.suspend_run(
        "wf_1", "L1", {"kind": "signal", "signals": ["go"]}, None, None, now, []
    )
    assert ready == now


def test_quota_bucket_refills(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    results = [store.take_quota("q", "k", 2, 60, 1000.0)[0] for _ in range(3)]
    assert results == [True, True, False]
    assert store.take_quota("q", "k", 2, 60, 1030.0)[0] is True  # half a minute refills one token


def test_topic_offsets_are_dense_per_topic(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    assert [store.append_message("b", "t", {"i": i}, None, 1.0) for i in range(3)] == [0, 1, 2]
    assert store.append_message("b", "other", {}, None, 1.0) == 0
    assert [m["message"]["i"] for m in store.read_messages("b", "t", from_offset=1)] == [1, 2]
