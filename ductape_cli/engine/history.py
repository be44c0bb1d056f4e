"""A run's history as users read it, from the events table.

A completed step is stored as one `step_completed` row that carries its start
time (one row fewer per step on the hot path); reading expands it back into
`step_started` + `step_completed`, and adds the step's output from the journal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ductape_cli.models import Event, EventType


def store_types(types: Sequence[str] | None) -> list[str] | None:
    """The stored event types to read for the requested ones."""
    if not types:
        return None
    wanted = set(types)
    if EventType.STEP_STARTED in wanted:
        wanted.add(EventType.STEP_COMPLETED)
    return sorted(wanted)


def expand(events: Sequence[Event], outputs: Callable[[], dict[str, Any]], types: Sequence[str] | None = None) -> list[dict[str, Any]]:
    wanted = set(types) if types else None
    loaded: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = []
    for event in events:
        item = event.to_dict()
        data = dict(item["data"])
        if event.step:
            data = {"step": event.step, **data}
        if event.type == EventType.STEP_COMPLETED and event.step:
            started_at = data.pop("started_at", None)
            if started_at is not None and (wanted is None or EventType.STEP_STARTED in wanted):
                rows.append({**item, "type": str(EventType.STEP_STARTED), "timestamp": int(started_at * 1000), "data": {"step": event.step}})
            if wanted is not None and EventType.STEP_COMPLETED not in wanted:
                continue
            if loaded is None:
                loaded = outputs()
            data["output"] = loaded.get(event.step)
        item["data"] = data
        rows.append(item)
    return rows
