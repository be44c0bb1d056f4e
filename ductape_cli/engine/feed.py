"""The live stream's vocabulary: store feed rows turned into the frontend seed's events.

The store's feed (filled by triggers, so every writer — this process, a CLI,
a worker elsewhere — appears in it) lists status changes, events and completed
steps in commit order. Each row becomes one or more stream events shaped
`{id, executionId, workflow, type, timestamp, data}`; `id` is the feed cursor,
shared by the events one row yields, and `since=id` resumes after that row.

Mapping: a status change is `status_changed` (`data.status`); a completed step
is `step_started` then `step_completed` (`data.step`, `data.output`; a step's
start is known when it commits, the hot path writes nothing before); the end
events are `completed` (`data.result`), `failed` (`data.error`), `rolled_back`
and `cancelled`; every other event keeps its history name (`signal_received`,
`step_failed`, `sleep_started`, ...).
"""

from __future__ import annotations

from typing import Any

from ductape_cli.models import EventType, FeedRow, StreamType

_ENDINGS: dict[str, StreamType] = {
    EventType.WORKFLOW_COMPLETED: StreamType.COMPLETED,
    EventType.WORKFLOW_FAILED: StreamType.FAILED,
    EventType.WORKFLOW_ROLLED_BACK: StreamType.ROLLED_BACK,
    EventType.WORKFLOW_CANCELLED: StreamType.CANCELLED,
}


def stream_events(row: FeedRow) -> list[dict[str, Any]]:
    """The stream events one feed row yields (none for a row whose event or step is gone)."""

    def event(type_: str, ts: float | None, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row.id,
            "executionId": row.run_id,
            "workflow": row.tag,
            "type": type_,
            "timestamp": int((ts or 0) * 1000),
            "data": data,
        }

    if row.kind == "status":
        return [event(StreamType.STATUS_CHANGED, row.ts, {"status": row.status})]
    if row.kind == "step":
        if row.step_tag is None:
            return []
        done = {
            "step": row.step_tag,
            "output": row.step_output,
            "attempt": row.step_attempts,
            "duration_ms": _duration(row.step_started_at, row.step_ended_at),
        }
        return [
            event(EventType.STEP_STARTED, row.step_started_at, {"step": row.step_tag}),
            event(EventType.STEP_COMPLETED, row.step_ended_at, done),
        ]
    if row.event_type is None:
        return []
    data = dict(row.event_data)
    if row.event_step:
        data = {"step": row.event_step, **data}
    ending = _ENDINGS.get(row.event_type)
    if ending == StreamType.COMPLETED:
        return [event("completed", row.ts, {"result": row.run_output})]
    if ending is not None:
        return [event(ending, row.ts, data)]
    return [event(row.event_type, row.ts, data)]


def _duration(start: float | None, end: float | None) -> int | None:
    return None if start is None or end is None else int((end - start) * 1000)
