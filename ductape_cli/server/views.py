"""Response shapes: the engine's results in the frontend SDK's camelCase words.

`execution` is what `getStatus` returns (`status`, `result`, `error` as a
message, plus the detail); `summary` is one row of `list`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ductape_cli.models import Run


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return (
        datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def summary(run: Run) -> dict[str, Any]:
    return {
        "executionId": run.id,
        "workflow": run.tag,
        "status": str(run.status),
        "env": run.env,
        "createdAt": iso(run.created_at),
        "startedAt": iso(run.started_at),
        "completedAt": iso(run.ended_at),
        "executionTime": run.execution_time_ms,
        "parentId": run.parent_id,
        "scheduleId": run.schedule_id,
        "metadata": run.metadata,
    }


def execution(status: dict[str, Any]) -> dict[str, Any]:
    """`Engine.status` (or a result) in the seed's words; `error` is the message, `errorDetail` all of it."""
    error = status.get("error")
    view = {
        "executionId": status["workflow_id"],
        "workflow": status["workflow_tag"],
        "status": status["status"],
        "result": status.get("output"),
        "error": (error or {}).get("message") if error else None,
        "errorDetail": error,
        "completedSteps": status.get("completed_steps", []),
        "failedStep": status.get("failed_step"),
        "executionTime": status.get("execution_time"),
        "rollbackResult": status.get("rollback_result"),
    }
    optional = {
        "waiting": "waiting",
        "metadata": "metadata",
        "input": "input",
        "env": "env",
        "version": "version",
        "steps": "steps",
        "parent_id": "parentId",
        "replayed_from": "replayedFrom",
        "restarted_from": "restartedFrom",
        "resumed_from": "resumedFrom",
        "idempotency_key": "idempotencyKey",
        "current_step": "currentStep",
        "cancel_requested": "cancelRequested",
        "resumed": "resumed",
    }
    for key, name in optional.items():
        if key in status:
            view[name] = status[key]
    for key, name in (
        ("created_at", "createdAt"),
        ("started_at", "startedAt"),
        ("ended_at", "completedAt"),
    ):
        if key in status:
            view[name] = iso(status[key])
    if "children" in status:
        view["children"] = [
            {"executionId": c["workflow_id"], "workflow": c["workflow_tag"], "status": c["status"]}
            for c in status["children"]
        ]
    return view
