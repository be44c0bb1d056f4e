"""Processes racing on one store (SQLite file or PostgreSQL schema): each run claimed by exactly
one, one run per idempotency key, gap-free topic offsets. Spawned processes, real connections."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

from ductape_cli.models import Run, RunStatus
from tests.store import racers

PROCESSES = 4


def _race(target: Any, args_for: Any) -> list[Any]:
    # Real processes, forked from a server that has imported the store once: a fresh interpreter
    # per racer (spawn) cost ~0.3 s of CPU each. Each racer still opens its own connection.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.store.racers", "ductape_cli.store", "psycopg"])
    out = ctx.Queue()
    start = ctx.Barrier(PROCESSES)  # every process connected and waiting before anyone starts
    procs = [ctx.Process(target=target, args=(*args_for(i), start, out)) for i in range(PROCESSES)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return results


def test_claims_racing_between_processes_take_each_run_exactly_once(
    location: str, store: Any
) -> None:
    now = time.time()
    for i in range(60):
        run = Run(
            id=f"r{i:03}",
            tag="order",
            status=RunStatus.PENDING,
            input={},
            created_at=now,
            ready_at=now - 1,
        )
        store.create_run(run, [])
    claimed = _race(racers.claim_all, lambda i: (location, f"host{i}:{100 + i}:tok"))
    everything = [run_id for batch in claimed for run_id in batch]
    assert sorted(everything) == [f"r{i:03}" for i in range(60)]  # none twice, none lost
    assert store.count_runs(status="completed") == 60


def test_creates_racing_for_one_idempotency_key_make_one_run(location: str, store: Any) -> None:
    results = _race(racers.create_with_key, lambda i: (location, f"attempt-{i}", "pay-42"))
    assert len({run_id for run_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert store.count_runs() == 1


def test_topic_appends_racing_get_distinct_gap_free_offsets(location: str, store: Any) -> None:
    results = _race(racers.append_many, lambda i: (location, 25))
    offsets = sorted(o for batch in results for o in batch)
    assert offsets == list(range(PROCESSES * 25))
    assert [m["offset"] for m in store.read_messages("local", "orders")] == offsets


def test_a_child_ending_while_its_parent_suspends_still_wakes_the_parent() -> None:
    """PostgreSQL (READ COMMITTED): the child's wake-up runs while the parent's suspend is not yet
    committed. It must wait for that commit and then wake the parent, not skip a row that did not
    look suspended when it started (a lost wake-up: the parent would wait forever)."""
    import threading

    import psycopg

    from ductape_cli.store import open_store
    from tests.pg import SERVER, pg_schema

    with pg_schema() as url, psycopg.connect(SERVER, autocommit=True) as watcher:
        parent_side, child_side = open_store(url), open_store(url)
        now = time.time()
        parent_side.create_run(
            Run(
                id="parent",
                tag="order",
                status=RunStatus.PENDING,
                input={},
                created_at=now,
                ready_at=now,
            ),
            [],
        )
        (claimed,) = parent_side.claim_ready("w1", now, 30.0, 1)
        with (
            parent_side._write() as conn
        ):  # the suspend's transaction, held open while the child ends
            holder = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            parent_side.suspend_run(
                "parent", claimed.lease, {"kind": "child", "child_id": "kid"}, None, None, now, []
            )
            waker = threading.Thread(target=child_side.wake_parent, args=("parent", now + 1))
            waker.start()
            # Commit once the wake-up waits on the parent's row (or has ended without waiting).
            blocked = "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
            deadline = time.monotonic() + 30
            while waker.is_alive() and time.monotonic() < deadline:
                if watcher.execute(blocked, (holder,)).fetchone()[0]:
                    break
                time.sleep(0.01)
        waker.join(timeout=30)
        assert parent_side.get_run("parent").ready_at == now + 1
        parent_side.close()
        child_side.close()
