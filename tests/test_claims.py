"""Claims that stay flat with queue depth (issue 19): what they take, in what order, a claim
riding on a finish, and the query plans of every statement on the claim, wake and recovery paths."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import pytest

from ductape_cli.models import Run, RunStatus
from ductape_cli.store import SqliteStore, open_store

HOST = "host-a"
LIVE = f"{HOST}:100:aaaa"
DEAD = f"{HOST}:200:bbbb"
OTHER_HOST = "host-b:300:cccc"


def run(run_id: str, now: float, **fields: object) -> Run:
    base: dict[str, object] = dict(
        id=run_id, tag="t", status=RunStatus.PENDING, input={}, created_at=now, ready_at=now
    )
    base.update(fields)
    return Run(**base)  # type: ignore[arg-type]


def populated(path: Path, queued: int = 300) -> tuple[SqliteStore, float]:
    """A store with queued runs, runs in flight (live, dead and expired owners), sleepers and waiters."""
    store = open_store(str(path), namespace="p")  # engines always open their project's namespace
    now = time.time()
    for i in range(queued):
        store.create_run(run(f"wf_q{i:05d}", now - 100 + i * 0.01, tag="t" if i % 2 else "u"), [])
    for i in range(20):
        store.create_run(run(f"wf_s{i:03d}", now, ready_at=now + 3600), [])  # sleeping
        store.create_run(
            run(f"wf_w{i:03d}", now, ready_at=None, waiting={"kind": "signal", "signals": ["go"]}),
            [],
        )
    lease = dict(status=RunStatus.RUNNING, ready_at=now - 200, lease="0123456789abcdef")
    store.create_run(run("wf_live", now, owner=LIVE, lease_expires_at=now + 30, **lease), [])  # type: ignore[arg-type]
    store.create_run(run("wf_dead", now, owner=DEAD, lease_expires_at=now + 30, **lease), [])  # type: ignore[arg-type]
    store.create_run(
        run("wf_expired", now, owner=OTHER_HOST, lease_expires_at=now - 1, **lease), []
    )  # type: ignore[arg-type]
    for i in range(200):
        store.create_run(
            run(f"wf_done{i:03d}", now, status=RunStatus.COMPLETED, owner=LIVE, ended_at=now), []
        )
    store.conn.execute("ANALYZE")  # the planner must choose the same with statistics as without
    return store, now


def test_a_batch_claim_takes_orphans_first_then_the_queue_by_due_time(tmp_path: Path) -> None:
    store, now = populated(tmp_path / "s.db", queued=10)
    claimed = store.claim_ready("me:1:x", now, 30, 5, dead_owners=[DEAD])
    ids = [r.id for r in claimed]
    assert ids[:2] == ["wf_dead", "wf_expired"]
    assert ids[2:] == ["wf_q00000", "wf_q00001", "wf_q00002"]
    assert {r.taken_from for r in claimed[:2]} == {DEAD, OTHER_HOST}
    assert all(r.owner == "me:1:x" and r.status == RunStatus.RUNNING for r in claimed)
    assert len({r.lease for r in claimed}) == 5 and all(
        len(r.lease or "") == 16 for r in claimed
    )  # one token each
    stored = store.get_run("wf_q00000")
    assert stored is not None and stored.owner == "me:1:x" and stored.lease_expires_at == now + 30
    # The live owner's run, sleepers, waiters and finished runs are never taken.
    rest = store.claim_ready("me:1:x", now, 30, 100)
    assert [r.id for r in rest] == [f"wf_q{i:05d}" for i in range(3, 10)]
    assert store.claim_ready("other:2:y", now, 30, 100) == []


def test_claims_by_tag_and_a_second_claimer_gets_the_rest(tmp_path: Path) -> None:
    store, now = populated(tmp_path / "s.db", queued=10)
    first = store.claim_ready("a:1:x", now, 30, 3, tags=["u"])
    assert [r.id for r in first] == ["wf_q00000", "wf_q00002", "wf_q00004"]
    second = store.claim_ready("b:1:x", now, 30, 100)
    assert not {r.id for r in first} & {r.id for r in second}
    assert len(first) + len(second) == 11  # 10 queued + the expired lease


def test_owners_on_host_reads_runs_in_flight_only(tmp_path: Path) -> None:
    store, now = populated(tmp_path / "s.db", queued=5)
    assert sorted(store.owners_on_host(HOST)) == [LIVE, DEAD]
    assert store.owners_on_host("host") == []  # a prefix of a host name is another host
    assert store.next_ready_at() == pytest.approx(now - 100)


def _plans(store: SqliteStore, statements: list[str]) -> dict[str, list[str]]:
    plans = {}
    for sql in statements:
        if not re.match(r"\s*(SELECT|UPDATE|DELETE|INSERT)", sql, re.I) or "sqlite_" in sql:
            continue
        rows = store.conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
        plans[sql] = [r[3] for r in rows]
    return plans


def test_claim_wake_and_recovery_queries_walk_indexes(tmp_path: Path) -> None:
    """Every statement the store runs to claim, wake and recover runs, as SQLite would execute it
    (parameters bound): a search of an index, never a scan of a table, never a temp B-tree."""
    store, now = populated(tmp_path / "s.db")
    executed: list[str] = []
    store.conn.set_trace_callback(executed.append)
    # claim: the queue, orphans of a dead owner and a stale lease, by tag
    first = {r.id: r for r in store.claim_ready("me:1:x", now, 30, 4, dead_owners=[DEAD])}
    store.claim_ready("me:1:x", now, 30, 4, tags=["t"], stale_leases=["0123456789abcdef"])
    taken = store.claim_run("wf_q00100", "me:1:x", now, 30, dead_owners=[DEAD])
    assert taken is not None and taken.lease
    # recovery: who holds runs on this host, expired leases, when the next run is due, lease upkeep
    store.owners_on_host(HOST)
    store.expired_leases(now)
    store.next_ready_at()
    store.renew_leases({"wf_q00100": taken.lease}, now, 30)
    store.cancel_requests(["wf_q00100", "wf_live"])
    store.set_current_steps({"wf_q00100": ("s1", taken.lease)})
    store.release_run("wf_q00100", taken.lease)
    # wake: signals, cancels, children, timers; suspending and finishing
    store.add_signal("wf_w001", "go", {"x": 1}, now)
    woken = store.get_run("wf_w001")
    assert woken is not None and woken.ready_at == now  # the signalled run is due at once
    held_w = store.claim_run("wf_w001", "me:1:x", now, 30)
    assert held_w is not None
    assert (
        store.consume_signal("wf_w001", 0, ["go"], now, "signal_received", lease=held_w.lease)
        is not None
    )
    store.request_cancel("wf_s001", "stop", now)
    store.wake_parent("wf_w002", now)
    held = [r for r in first.values() if r.id.startswith("wf_q")]
    store.suspend_run(
        held[0].id, held[0].lease or "", {"kind": "signal", "signals": ["go"]}, None, None, now, []
    )
    store.finish_run(held[1].id, held[1].lease or "", {"status": "completed", "ended_at": now}, [])
    store.due_schedules(now)
    store.conn.set_trace_callback(None)

    plans = _plans(store, executed)
    assert len(plans) >= 15, executed
    for sql, plan in plans.items():
        text = " | ".join(plan)
        assert "TEMP B-TREE" not in text, f"{sql}\n  -> {text}"
        for line in plan:
            # Only the index of runs in flight may be walked whole: it holds one entry per executing run.
            if line.startswith("SCAN") and "INDEX runs_leased" not in line:
                pytest.fail(f"full scan: {sql}\n  -> {text}")
        assert "runs_status_created" not in text, f"{sql}\n  -> {text}"
    claims = [plan for sql, plan in plans.items() if "ORDER BY ready_at LIMIT" in sql]
    assert claims and all(any("USING INDEX runs_queue" in line for line in plan) for plan in claims)
    leased = [plan for sql, plan in plans.items() if "INDEXED BY runs_leased" in sql]
    assert len(leased) >= 2 and all(
        any("USING INDEX runs_leased" in line for line in p) for p in leased
    )


def test_related_runs_use_an_index_per_lineage_column(tmp_path: Path) -> None:
    store, now = populated(tmp_path / "s.db", queued=5)
    for column in ("replayed_from", "restarted_from", "resumed_from", "parent_id"):
        store.create_run(run(f"wf_{column}", now, **{column: "wf_q00000"}), [])
    executed: list[str] = []
    store.conn.set_trace_callback(executed.append)
    related = store.related_runs("wf_q00000")
    store.conn.set_trace_callback(None)
    assert sorted(r.id for r in related) == sorted(
        f"wf_{c}" for c in ("replayed_from", "restarted_from", "resumed_from", "parent_id")
    )
    (plan,) = _plans(store, executed).values()
    searches = [line for line in plan if line.startswith("SEARCH")]
    assert len(searches) == 4 and not [
        line for line in plan if line.startswith("SCAN") or "TEMP" in line
    ], plan


def test_a_store_from_before_the_queue_indexes_is_migrated(tmp_path: Path) -> None:
    """Runs written under the old `runs_ready` index are claimed through the new ones after an upgrade."""
    from ductape_cli.store.migrations import MIGRATIONS

    path = tmp_path / "old.db"
    old = MIGRATIONS.index("DROP INDEX runs_ready")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    for statement in MIGRATIONS[:old]:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {old}")
    now = time.time()
    conn.execute(
        "INSERT INTO runs (id, tag, status, input, created_at, ready_at, namespace) "
        "VALUES ('wf_old', 't', 'pending', '{}', ?, ?, 'p')",
        (now, now),
    )
    conn.commit()
    conn.close()
    store = open_store(str(path), namespace="p")
    names = {
        r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    assert {"runs_queue", "runs_leased"} <= names and "runs_ready" not in names
    assert [r.id for r in store.claim_ready("me:1:x", now, 30, 10)] == ["wf_old"]


def test_run_id_fragments_are_index_lookups(tmp_path: Path) -> None:
    """`status <prefix>` and `status <suffix>` stay flat with the store's size: a key range and the tail index."""
    store, now = populated(tmp_path / "s.db", queued=5)
    store.create_run(run("wf_19a3f2c4d5e6a1b2c3", now), [])
    executed: list[str] = []
    store.conn.set_trace_callback(executed.append)
    assert store.find_run_ids("wf_19a3f2") == ["wf_19a3f2c4d5e6a1b2c3"]
    assert store.find_run_ids("a1b2c3") == ["wf_19a3f2c4d5e6a1b2c3"]
    assert store.find_run_ids("e6a1b2c3") == ["wf_19a3f2c4d5e6a1b2c3"]
    store.conn.set_trace_callback(None)
    for sql, plan in _plans(store, executed).items():
        assert all(
            line.startswith("SEARCH") or "TEMP B-TREE FOR ORDER BY" in line for line in plan
        ), (sql, plan)
        assert any("runs_tail" in line or "sqlite_autoindex_runs_1" in line for line in plan), (
            sql,
            plan,
        )


def test_a_finish_asked_to_claim_the_next_queued_run_in_its_transaction(tmp_path: Path) -> None:
    store, now = populated(tmp_path / "s.db", queued=4)
    held = store.claim_ready("me:1:x", now, 30, 1, stale_leases=[])[0]
    assert held.id == "wf_q00000"
    store.claim_on_finish(held.id, "me:1:x", lambda: now + 5, 30)
    commits = store.conn.total_changes
    executed: list[str] = []
    store.conn.set_trace_callback(executed.append)
    assert store.finish_run(held.id, held.lease or "", {"status": "completed", "ended_at": now}, [])
    store.conn.set_trace_callback(None)
    assert executed.count("COMMIT") == 1 and store.conn.total_changes == commits + 2
    [following] = store.take_finish_claim() or []
    assert following.id == "wf_q00001" and following.owner == "me:1:x"
    assert following.lease and following.lease != held.lease
    assert following.lease_expires_at == now + 35  # the clock is read when the finish commits
    stored = store.get_run("wf_q00001")
    assert stored is not None and stored.owner == "me:1:x" and stored.lease == following.lease
    assert store.take_finish_claim() is None  # collected once; the request is gone too


def test_a_finish_claims_only_for_the_run_it_was_asked_for_and_only_when_it_commits(
    tmp_path: Path,
) -> None:
    store, now = populated(tmp_path / "s.db", queued=4)
    first, second = store.claim_ready("me:1:x", now, 30, 2, stale_leases=[])
    store.claim_on_finish(second.id, "me:1:x", lambda: now, 30)
    assert store.finish_run(first.id, first.lease or "", {"status": "completed"}, [])
    assert store.take_finish_claim() is None  # another run's finish (a nested one) took nothing
    store.claim_on_finish(second.id, "me:1:x", lambda: now, 30)
    assert not store.finish_run(second.id, "stale-lease", {"status": "completed"}, [])
    assert store.take_finish_claim() is None  # the lease was lost: no finish, no claim
    stored = store.get_run("wf_q00002")
    assert stored is not None and stored.owner is None
    store.claim_on_finish(second.id, "me:1:x", lambda: now, 30, tags=["nothing-of-this-tag"])
    assert store.finish_run(second.id, second.lease or "", {"status": "completed"}, [])
    assert store.take_finish_claim() == []  # finished, and nothing of that tag was due
