"""Rich renderables for people: step trees, run tables, timelines, step details.

Only the render package imports rich, and only when a command prints for a
person, so `--json` and `--help` never pay for it.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ductape_cli.durations import format_duration

GLYPHS = {
    "completed": ("✓", "green"),
    "failed": ("✗", "red"),
    "skipped": ("⊘", "yellow"),
    "rolled_back": ("↺", "magenta"),
    "running": ("●", "cyan"),
    "waiting": ("◷", "cyan"),
    "pending": ("○", "dim"),
    "cancelled": ("■", "yellow"),
}
STATUS_STYLE = {
    "completed": "bold green",
    "failed": "bold red",
    "rolled_back": "bold magenta",
    "cancelled": "bold yellow",
    "running": "bold cyan",
    "pending": "cyan",
}


def console(stderr: bool = False, file: Any = None) -> Console:
    """The one console: markup, emoji codes and highlighting off, so user data prints as it is."""
    return Console(
        stderr=stderr, file=file, no_color="NO_COLOR" in os.environ, highlight=False, soft_wrap=False,
        markup=False, emoji=False,
    )  # fmt: skip


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def step_label(step: dict[str, Any]) -> Text:
    status = step.get("status", "pending")
    glyph, style = GLYPHS.get(status, ("?", ""))
    kind = step.get("kind", "step")
    label = Text(f"{glyph} ", style=style)
    if kind == "step":
        label.append(step["tag"], style="bold")
    elif kind == "checkpoint":
        label.append(f"checkpoint {step['tag']}", style="blue")
    elif kind == "sleep":
        label.append(f"sleep {format_duration((step.get('options') or {}).get('duration_ms'))}", style="cyan")
    elif kind == "signal":
        label.append(f"signal {step['tag']}", style="cyan")
    else:
        label.append(f"{kind} {step['tag']}", style="dim")
    duration = step.get("duration")
    if duration is not None and kind == "step":
        label.append(f"  {format_duration(duration)}", style="dim")
    attempts = step.get("attempts") or 0
    if attempts > 1:
        label.append(f"  {attempts} attempts", style="yellow")
    if step.get("has_rollback"):
        mark = {"completed": "  ↺ rolled back", "failed": "  ↺ rollback failed"}.get(step.get("rollback_status") or "", "  ↺")
        label.append(mark, style="magenta")
    if step.get("critical"):
        label.append("  critical", style="dim")
    return label


def step_tree(result: dict[str, Any], steps: list[dict[str, Any]]) -> Tree:
    title = Text.assemble((result["workflow_tag"], "bold"), "  ", (result["workflow_id"], "dim"), "  ", status_text(result["status"]))
    tree = Tree(title)
    for step in steps:
        node = tree.add(step_label(step))
        if step.get("status") == "failed" and step.get("error"):
            node.add(Text(short(step["error"].get("message"), 120), style="red"))
        elif step.get("status") == "skipped":
            reason = step.get("reason") or ((step.get("options") or {}).get("skip") or {}).get("condition")
            if step.get("error"):
                reason = f"allowed to fail: {short(step['error'].get('message'), 100)}"
            if reason:
                node.add(Text(f"skipped: {reason}" if not str(reason).startswith(("skipped", "not reached", "allowed")) else str(reason), style="yellow"))
        if step.get("rollback_error"):
            node.add(Text(f"rollback failed: {step['rollback_error']}", style="red"))
    return tree


def result_panel(result: dict[str, Any], steps: list[dict[str, Any]] | None = None) -> Group:
    parts: list[Any] = []
    if steps is not None:
        parts.append(step_tree(result, steps))
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="dim")
    summary.add_column()
    summary.add_row("status", status_text(result["status"]))
    summary.add_row("run", result["workflow_id"])
    summary.add_row("time", run_time(result))
    if result.get("output") is not None:
        summary.add_row("output", short(result["output"], 200))
    if result.get("error"):
        error = result["error"]
        where = f" (step {error.get('step')})" if error.get("step") else ""
        summary.add_row("error", Text(f"{error.get('message')}{where} [{error.get('code')}]", style="red"))
    rollback = result.get("rollback_result")
    if rollback:
        summary.add_row("rolled back", ", ".join(rollback.get("rolled_back_steps") or []) or "-")
        for failed in rollback.get("failed_steps") or []:
            summary.add_row("rollback failed", Text(f"{failed['tag']}: {failed['error']}", style="red"))
    waiting = result.get("waiting")
    if waiting:
        summary.add_row("waiting", Text(waiting.get("detail", ""), style="cyan"))
    parts.append(summary)
    return Group(*parts)


def run_time(result: Any) -> str:
    """How long the run took; for one that has not ended, how long it has been going (never a stale 0ms)."""
    from ductape_cli.render.plain import run_time as plain_run_time

    return plain_run_time(result)


def status_view(info: Any) -> Group:
    """`ductape status`: the step tree and summary, then children and lineage links."""
    parts: list[Any] = [result_panel(info, info["steps"])]
    if info.get("children"):
        parts.append(Text("children: " + ", ".join(f"{c['workflow_id']} ({c['status']})" for c in info["children"])))
    for key in ("parent_id", "replayed_from", "restarted_from", "resumed_from"):
        if info.get(key):
            parts.append(Text(f"{key}: {info[key]}"))
    if info.get("metadata"):
        parts.append(Text("metadata: " + json.dumps(info["metadata"], sort_keys=True, ensure_ascii=False)))
    return Group(*parts)


def cancel_view(result: Any) -> Group:
    from ductape_cli.render.plain import cancel_lines

    return Group(*(Text(line) for line in cancel_lines(result)))


def query_view(answer: Any) -> Text:
    return Text(json.dumps(answer, indent=2, default=str, ensure_ascii=False))


def events_table(items: list[Any]) -> Any:
    if not items:
        return Text("no custom events", style="dim")
    table = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    for column in ("time", "type", "step", "payload"):
        table.add_column(column, no_wrap=column != "payload")
    for item in items:
        table.add_row(
            Text(item["timestamp"], style="dim"), Text(str(item["type"]), style="bold"), Text(item.get("step") or "-"),
            Text(json.dumps(item["payload"], default=str, ensure_ascii=False)),
        )  # fmt: skip
    return table


def schedule_view(view: Any) -> Group:
    from ductape_cli.render.plain import schedule_lines

    lines = schedule_lines(view)
    return Group(Text(lines[0], style="bold"), *(Text(line) for line in lines[1:]))


def schedules_view(views: list[Any]) -> Group:
    if not views:
        return Group(Text("no schedules", style="dim"))
    return Group(*(schedule_view(v) for v in views))


def runs_table(runs: list[Any]) -> Any:
    if not runs:
        return Text("no runs", style="dim")
    table = Table(box=None, header_style="bold", pad_edge=False)
    with_metadata = any(getattr(run, "metadata", None) for run in runs)
    for column in ("run", "workflow", "status", "env", "started", "duration", *(("metadata",) if with_metadata else ())):
        table.add_column(column)
    for run in runs:
        cells: list[Any] = [
            Text(run.id), Text(run.tag), status_text(str(run.status)), Text(run.env or "-"), when(run.created_at),
            format_duration(run.execution_time_ms if run.ended_at else None),
        ]  # fmt: skip
        if with_metadata:
            cells.append(Text(", ".join(f"{k}={v}" for k, v in sorted(run.metadata.items())) or "-"))
        table.add_row(*cells)
    return table


EVENT_STYLE = {
    "workflow_started": "bold", "workflow_completed": "bold green", "workflow_failed": "bold red",
    "workflow_rolled_back": "bold magenta", "workflow_cancelled": "bold yellow", "step_completed": "green",
    "step_failed": "red", "step_retried": "yellow", "step_skipped": "yellow", "rollback_started": "magenta",
    "step_rolled_back": "magenta", "step_rollback_failed": "red", "signal_received": "cyan",
    "signal_waiting": "cyan", "sleep_started": "cyan", "checkpoint_created": "blue", "log": "dim",
}  # fmt: skip


def timeline(events: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    table.add_column("time", style="dim", no_wrap=True)
    table.add_column("+ms", justify="right", style="dim")
    table.add_column("event", no_wrap=True)
    table.add_column("details")
    start = events[0]["timestamp"] if events else 0
    for event in events:
        data = dict(event.get("data") or {})
        step = data.pop("step", None)
        if event["type"] == "log":
            details = f"[{data.get('level')}] {data.get('message')}" + (f" {short(data['data'], 80)}" if data.get("data") else "")
        else:
            details = " ".join(f"{k}={short(v, 60)}" for k, v in data.items() if v is not None)
        label = Text(event["type"], style=EVENT_STYLE.get(event["type"], ""))
        if step:
            label.append(f" {step}", style="bold")
        ts = event["timestamp"] / 1000
        table.add_row(datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3], str(event["timestamp"] - start), label, details)
    return table


def step_detail(detail: dict[str, Any]) -> Group:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    grid.add_row("step", Text(detail["tag"], style="bold"))
    grid.add_row("status", status_text(detail["status"]))
    grid.add_row("attempts", str(detail.get("attempts")))
    grid.add_row("duration", format_duration(detail.get("duration")))
    if detail.get("input") is not None:
        grid.add_row("input", short(detail["input"], 200))
    grid.add_row("output", short(detail.get("output"), 200))
    if detail.get("error"):
        grid.add_row("error", Text(short(detail["error"], 200), style="red"))
    if detail.get("rollback_status"):
        grid.add_row("rollback", detail["rollback_status"])
    if detail.get("options"):
        grid.add_row("options", short(detail["options"], 200))
    if detail.get("source"):
        grid.add_row("source", detail["source"])
    attempts = Table(box=None, header_style="bold", title="attempts", title_justify="left")
    for column in ("#", "started", "duration", "error"):
        attempts.add_column(column)
    for attempt in detail.get("attempt_log") or []:
        error = attempt.get("error")
        attempts.add_row(
            str(attempt["attempt"]), when(attempt.get("started_at")), format_duration(attempt.get("duration")),
            Text(short(error.get("message"), 80), style="red") if error else Text("ok", style="green"),
        )  # fmt: skip
    return Group(grid, attempts)
