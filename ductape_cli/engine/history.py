"""A run's history as users read it: the events table merged with the journal.

A step that completes writes no event row (one row fewer per step on the hot
path): its `step_started` and `step_completed` entries are derived from its
journal row (start and end times, attempt, output). Everything else — waits,
signals, failures, rollbacks, logs, lineage — is an event row. The two are
merged by time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ductape_cli.models import Event, EventType, OpKind, StepRecord, StepStatus

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine

_DERIVED = (EventType.STEP_STARTED, EventType.STEP_COMPLETED)


def store_types(types: Sequence[str] | None) -> list[str] | None:
    """The stored event types to read for the requested ones (None: all)."""
    return sorted(set(types)) if types else None


def merge(events: Sequence[Event], journal: Iterable[StepRecord], types: Sequence[str] | None = None) -> list[dict[str, Any]]:
    wanted = set(types) if types else None
    explicit = {e.step for e in events if e.type == EventType.STEP_COMPLETED and e.step}
    keyed: list[tuple[tuple[float, int, int], dict[str, Any]]] = []
    for event in events:
        item = event.to_dict()
        data = dict(item["data"])
        if event.step:
            data = {"step": event.step, **data}
        item["data"] = data
        keyed.append(((event.ts, 1, event.id), item))
    if wanted is None or wanted & set(_DERIVED):
        for record in journal:
            if record.kind != OpKind.STEP or record.tag in explicit or record.started_at is None or record.ended_at is None:
                continue
            if record.status not in (StepStatus.COMPLETED, StepStatus.ROLLED_BACK):
                continue
            if wanted is None or EventType.STEP_STARTED in wanted:
                keyed.append(((record.started_at, 0, record.seq), _derived(record, EventType.STEP_STARTED, record.started_at, {})))
            if wanted is None or EventType.STEP_COMPLETED in wanted:
                data = {"attempt": record.attempts, "duration_ms": record.duration_ms, "output": record.output}
                keyed.append(((record.ended_at, 2, record.seq), _derived(record, EventType.STEP_COMPLETED, record.ended_at, data)))
    keyed.sort(key=lambda pair: pair[0])
    return [item for _, item in keyed]


def _derived(record: StepRecord, type_: str, ts: float, data: dict[str, Any]) -> dict[str, Any]:
    # Derived entries have no event id; `key` identifies them for --follow.
    return {"id": None, "type": str(type_), "timestamp": int(ts * 1000), "step": record.tag, "data": {"step": record.tag, **data}}


def entry_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    """A stable identity for an entry (event id, or step and type for derived ones)."""
    return (entry["id"],) if entry["id"] is not None else (entry["type"], entry["step"])


def journal_rows(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    """A run's journal as JSON-able rows, in position order."""
    rows = []
    for record in sorted(engine.store.load_journal(run_id).values(), key=lambda r: r.seq):
        row = dataclasses.asdict(record)
        row.pop("run_id")
        row["kind"], row["status"] = str(record.kind), str(record.status)
        rows.append(row)
    return rows


def export_run(engine: Engine, run_id: str, events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What `ductape history ID --json` prints: the run, its events and its journal."""
    run = engine.get_run(run_id)
    return {
        "workflow_id": run.id,
        "workflow_tag": run.tag,
        "status": str(run.status),
        "input": run.input,
        "env": run.env,
        "events": engine.history(run.id) if events is None else events,
        "journal": journal_rows(engine, run.id),
    }
