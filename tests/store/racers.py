"""Bodies of the processes that race each other in the contract tests (importable by the forkserver).

Each opens its store, then waits at `start` (a barrier of all the racers) so they begin together."""

from __future__ import annotations

import time
from typing import Any

from ductape_cli.models import Run, RunStatus


def claim_all(location: str, owner: str, start: Any, out: Any) -> None:
    """Claim runs one at a time until none are left; report the ids claimed."""
    from ductape_cli.store import open_store

    store = open_store(location)
    start.wait(60)
    claimed: list[str] = []
    idle = 0
    while idle < 3:
        runs = store.claim_ready(owner, time.time(), 60.0, 2)
        if not runs:
            idle += 1
            time.sleep(0.05)
            continue
        idle = 0
        for run in runs:
            claimed.append(run.id)
            store.finish_run(
                run.id, run.lease, {"status": "completed", "ended_at": time.time()}, []
            )
    out.put(claimed)
    store.close()


def create_with_key(location: str, run_id: str, key: str, start: Any, out: Any) -> None:
    """Create a run under a shared idempotency key; report (stored id, created)."""
    from ductape_cli.store import open_store

    store = open_store(location)
    run = Run(
        id=run_id,
        tag="pay",
        status=RunStatus.PENDING,
        input={"amount": 5},
        idempotency_key=key,
        created_at=time.time(),
        ready_at=time.time(),
    )
    start.wait(60)
    stored, created = store.create_run(run, [(time.time(), "workflow_started", None, {})])
    out.put((stored.id, created))
    store.close()


def append_many(location: str, count: int, start: Any, out: Any) -> None:
    """Append `count` messages to one topic; report the offsets received."""
    from ductape_cli.store import open_store

    store = open_store(location)
    start.wait(60)
    out.put(
        [store.append_message("local", "orders", {"n": i}, None, time.time()) for i in range(count)]
    )
    store.close()
