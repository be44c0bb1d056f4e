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

from ductape_cli.errors import InvalidInput
from ductape_cli.models import Event, EventType, OpKind, StepRecord, StepStatus

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine

_DERIVED = (EventType.STEP_STARTED, EventType.STEP_COMPLETED)


def check_types(types: Sequence[str] | None) -> None:
    """Refuse an event type that does not exist (`history --type`)."""
    unknown = [t for t in types or [] if t not in {e.value for e in EventType}]
    if unknown:
        raise InvalidInput(
            f"unknown event type {unknown[0]!r} (use one of {', '.join(e.value for e in EventType)})"
        )


def store_types(types: Sequence[str] | None) -> list[str] | None:
    """The stored event types to read for the requested ones (None: all)."""
    return sorted(set(types)) if types else None


def merge(
    events: Sequence[Event],
    journal: Iterable[StepRecord],
    types: Sequence[str] | None = None,
    explicit: set[str] | None = None,
) -> list[dict[str, Any]]:
    """Events and the entries derived from completed journal rows, by time. `explicit`: steps known to
    have their own `step_completed` event (collected here from `events`, and kept across calls)."""
    wanted = set(types) if types else None
    explicit = set() if explicit is None else explicit
    explicit.update(e.step for e in events if e.type == EventType.STEP_COMPLETED and e.step)
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
            if (
                record.kind != OpKind.STEP
                or record.tag in explicit
                or record.started_at is None
                or record.ended_at is None
            ):
                continue
            if record.status not in (StepStatus.COMPLETED, StepStatus.ROLLED_BACK):
                continue
            if wanted is None or EventType.STEP_STARTED in wanted:
                keyed.append(
                    (
                        (record.started_at, 0, record.seq),
                        _derived(record, EventType.STEP_STARTED, record.started_at, {}),
                    )
                )
            if wanted is None or EventType.STEP_COMPLETED in wanted:
                data = {
                    "attempt": record.attempts,
                    "duration_ms": record.duration_ms,
                    "output": record.output,
                }
                keyed.append(
                    (
                        (record.ended_at, 2, record.seq),
                        _derived(record, EventType.STEP_COMPLETED, record.ended_at, data),
                    )
                )
    keyed.sort(key=lambda pair: pair[0])
    return [item for _, item in keyed]


def _derived(record: StepRecord, type_: str, ts: float, data: dict[str, Any]) -> dict[str, Any]:
    # Derived entries have no event id.
    return {
        "id": None,
        "type": str(type_),
        "timestamp": int(ts * 1000),
        "step": record.tag,
        "data": {"step": record.tag, **data},
    }


def with_input(events: Sequence[Event], run_input: Any) -> Sequence[Event]:
    """`workflow_started` shows the run's input, which is stored once, on the run."""
    for event in events:
        if event.type == EventType.WORKFLOW_STARTED and "input" not in event.data:
            event.data = {"input": run_input, **event.data}
    return events


class Cursor:
    """`history --follow`: where a reader is, so each poll reads only what is new.

    Events are read after the last event id seen; a step's derived entries are
    made once, when its journal row first shows it finished."""

    def __init__(self, engine: Engine, run_id: str, types: Sequence[str] | None = None) -> None:
        self.engine, self.run_id, self.types = engine, run_id, types
        self.after_id = 0
        self.derived: set[int] = set()  # journal positions already shown
        self.explicit: set[str] = set()

    def read(self) -> list[dict[str, Any]]:
        store = self.engine.store
        events = store.events(self.run_id, after_id=self.after_id, types=store_types(self.types))
        if events:
            self.after_id = events[-1].id
            with_input(events, self.engine.get_run(self.run_id).input)
        fresh = [
            r
            for r in store.load_journal(self.run_id).values()
            if r.seq not in self.derived and _finished(r)
        ]
        self.derived.update(r.seq for r in fresh)
        return merge(events, fresh, self.types, self.explicit)


def _finished(record: StepRecord) -> bool:
    return (
        record.status in (StepStatus.COMPLETED, StepStatus.ROLLED_BACK)
        and record.ended_at is not None
    )


def journal_rows(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    """A run's journal as JSON-able rows, in position order."""
    rows = []
    for record in sorted(engine.store.load_journal(run_id).values(), key=lambda r: r.seq):
        row = dataclasses.asdict(record)
        row.pop("run_id")
        row["kind"], row["status"] = str(record.kind), str(record.status)
        rows.append(row)
    return rows


def export_run(
    engine: Engine, run_id: str, events: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
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
