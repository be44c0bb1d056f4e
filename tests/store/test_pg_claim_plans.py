"""PostgreSQL claims stay flat with queue depth (issue 19): every statement on the claim path,
and what an idle worker and the lease keeper read beside it, as the server plans it with real
statistics, reads an index, never the whole table.

A claim whose condition also admitted runs in flight (`owner IS NULL OR owner = ANY(...)`)
could not use the index of unowned runs: the server read every queued run and sorted them,
and one claim took 13.7 ms with 20,000 queued against 1.1 ms with 1,000.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from ductape_cli.models import Run, RunStatus
from ductape_cli.store import open_store

QUEUED = 3000
DEAD = "host-a:200:bbbb"


def _fill(url: str, now: float) -> None:
    """Thousands of queued runs in one COPY, a few in flight, then statistics."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY runs (id, tag, status, input, created_at, ready_at, namespace) FROM STDIN"
        ) as copy:
            for i in range(QUEUED):
                copy.write_row(
                    (f"wf_q{i:06d}", "t", "pending", "{}", now, now - 100 + i * 1e-3, "p")
                )
        cur.execute("ANALYZE runs")


def _traced(store: Any) -> list[tuple[str, tuple[Any, ...]]]:
    """Record every statement the store's session executes from here on."""
    seen: list[tuple[str, tuple[Any, ...]]] = []
    session, execute = store.conn, store.conn.execute

    def tracing(sql: str, params: Any = ()) -> Any:
        seen.append((sql, tuple(params)))
        return execute(sql, params)

    session.execute = tracing
    return seen


def test_claim_statements_read_the_queue_index() -> None:
    from tests.pg import pg_schema

    with pg_schema() as url:
        store = open_store(url, namespace="p")  # engines always open their project's namespace
        try:
            now = time.time()
            lease = dict(status=RunStatus.RUNNING, ready_at=now - 200, lease="0123456789abcdef")
            for run_id, owner, expires in (
                ("wf_live", "host-a:100:aaaa", now + 30),
                ("wf_dead", DEAD, now + 30),
                ("wf_expired", "host-b:300:cccc", now - 1),
            ):
                store.create_run(
                    Run(
                        id=run_id,
                        tag="t",
                        input={},
                        created_at=now,
                        owner=owner,
                        lease_expires_at=expires,
                        **lease,  # type: ignore[arg-type]
                    ),
                    [],
                )
            _fill(url, now)
            seen = _traced(store)
            store.claim_ready("me:1:x", now, 30, 1)  # the worker's usual claim: the queue only
            taken = store.claim_ready("me:1:x", now, 30, 4, dead_owners=[DEAD])
            store.claim_ready("me:1:x", now, 30, 2, tags=["t"], stale_leases=["0123456789abcdef"])
            store.claim_ready("me:1:x", now, 30, 1, stale_leases=None)
            held = next(r for r in taken if r.id.startswith("wf_q"))
            store.claim_on_finish(held.id, "me:1:x", time.time, 30)
            store.finish_run(
                held.id, held.lease or "", {"status": "completed", "ended_at": now}, []
            )
            assert store.take_finish_claim()
            # What an idle worker and the lease keeper read and write beside the claims.
            due = store.next_claim_at()  # the first queued run not yet claimed
            assert due is not None and now - 100 < due < now - 99
            store.owners_on_host("host-a")
            store.expired_leases(now)
            store.renew_leases({held.id: held.lease or ""}, now, 30)
            store.cancel_requests([held.id, "wf_live"])
            claims = [(sql, params) for sql, params in seen if "FOR UPDATE SKIP LOCKED" in sql]
            assert len(claims) == 5, [sql for sql, _ in seen]
            for sql, params in seen:
                if not sql.lstrip().upper().startswith(("SELECT", "WITH", "UPDATE", "DELETE")):
                    continue  # BEGIN, COMMIT, a lock
                plan = "\n".join(
                    row[0] for row in store.conn.execute("EXPLAIN " + sql, params).fetchall()
                )
                assert "Seq Scan on runs" not in plan, f"{sql}\n{plan}"
                if (sql, params) in claims or "LEAST" in sql:
                    assert "runs_queue" in plan, f"{sql}\n{plan}"
        finally:
            store.close()


@pytest.fixture(autouse=True)
def _postgres() -> None:
    from tests.pg import need_postgres

    need_postgres()
