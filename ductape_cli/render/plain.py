"""Plain-text results for pipes and CI logs: no colour, no rich import (it costs ~40 ms to load)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from ductape_cli.durations import format_duration


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def run_time(result: Any) -> str:
    """How long the run took; for one that has not ended, how long it has been going (never a stale 0ms)."""
    if result["status"] in ("running", "pending"):
        started = result.get("started_at")
        if not started:
            return "not finished"
        return f"{format_duration(max(0.0, time.time() - started) * 1000)} so far"
    return format_duration(result.get("execution_time"))


def result_lines(result: Any) -> list[str]:
    lines = [
        f"status: {result['status']}",
        f"run: {result['workflow_id']}",
        f"time: {run_time(result)}",
    ]
    if result.get("output") is not None:
        lines.append("output: " + json.dumps(result["output"], default=str, ensure_ascii=False))
    error = result.get("error")
    if error:
        where = f" (step {error.get('step')})" if error.get("step") else ""
        lines.append(f"error: {error.get('message')}{where} [{error.get('code')}]")
    rollback = result.get("rollback_result")
    if rollback:
        lines.append("rolled back: " + (", ".join(rollback.get("rolled_back_steps") or []) or "-"))
        lines.extend(
            f"rollback failed: {f['tag']}: {f['error']}" for f in rollback.get("failed_steps") or []
        )
    waiting = result.get("waiting")
    if waiting:
        lines.append(f"waiting: {waiting.get('detail', '')}")
    return lines


def cancel_lines(result: Any) -> list[str]:
    return [
        f"cancelled: {str(result['cancelled']).lower()}",
        f"status: {result['status']}",
        f"rolled_back_steps: {', '.join(result['rolled_back_steps']) or '-'}",
    ]


def query_lines(answer: Any) -> list[str]:
    return json.dumps(answer, indent=2, default=str, ensure_ascii=False).splitlines()


def runs_lines(runs: list[Any]) -> list[str]:
    def metadata(run: Any) -> str:
        return (
            "\t" + json.dumps(run.metadata, sort_keys=True, ensure_ascii=False)
            if getattr(run, "metadata", None)
            else ""
        )

    return [f"{r.id}\t{r.tag}\t{r.status}\t{r.env or '-'}{metadata(r)}" for r in runs]


def runs_json(runs: list[Any]) -> list[dict[str, Any]]:
    """`ductape list --json`: one summary object a run."""
    return [
        {
            "workflow_id": run.id,
            "workflow_tag": run.tag,
            "status": str(run.status),
            "env": run.env,
            "created_at": run.created_at,
            "ended_at": run.ended_at,
            "execution_time": run.execution_time_ms,
            "parent_id": run.parent_id,
            "schedule_id": run.schedule_id,
            "metadata": run.metadata,
        }
        for run in runs
    ]


def iso(ms: int | float) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def timeline_lines(events: list[dict[str, Any]]) -> list[str]:
    lines = []
    for event in events:
        data = dict(event["data"])
        step = data.pop("step", None) or "-"
        details = _json(data) if data else ""
        lines.append(
            f"{iso(event['timestamp'])}  {event['type']:<22} {step:<20} {details}".rstrip()
        )
    return lines


def events_lines(items: list[Any]) -> list[str]:
    return [
        f"{item['timestamp']}\t{item['type']}\t{item.get('step') or '-'}\t{_json(item['payload'])}"
        for item in items
    ]


def schedule_lines(view: Any) -> list[str]:
    head = f"job {view['job_id']}  {view['tag']}  {view['kind']}"
    if view.get("cron"):
        head += f" {view['cron']}"
    if view.get("timezone"):
        head += f" ({view['timezone']})"
    if view.get("paused"):
        head += "  paused"
    lines = [head]
    lines.extend(f"  next: {when}" for when in view["next_fire_times"])
    if view.get("missed"):
        lines.append(f"  skipped while no worker ran: {', '.join(view['missed'])}")
    if view.get("last_run_id"):
        lines.append(f"  last run: {view['last_run_id']}")
    lines.extend(f"  run {run['workflow_id']}  {run['status']}" for run in view.get("runs") or [])
    return lines


def schedules_lines(views: list[Any]) -> list[str]:
    if not views:
        return ["no schedules"]
    return [line for view in views for line in schedule_lines(view)]
