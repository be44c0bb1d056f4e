"""Rich renderables for people: step trees, run tables, timelines, step details.

Only the render package imports rich, and only when a command prints for a
person, so `--json` and `--help` never pay for it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ductape_cli.durations import format_duration
from ductape_cli.render.detail_parts import ATTEMPT_COLUMNS, attempt_rows, step_rows
from ductape_cli.render.lines import when
from ductape_cli.render.status_parts import STATUS_STYLE, short, step_notes, summary, title
from ductape_cli.render.status_parts import links as status_links
from ductape_cli.render.status_parts import step_label as step_label_pieces


def console(stderr: bool = False, file: Any = None) -> Console:
    """The one console: markup, emoji codes and highlighting off, so user data prints as it is."""
    return Console(
        stderr=stderr,
        file=file,
        no_color="NO_COLOR" in os.environ,
        highlight=False,
        soft_wrap=False,
        markup=False,
        emoji=False,
    )


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def step_label(step: dict[str, Any]) -> Text:
    return Text.assemble(*step_label_pieces(step))


def step_tree(result: dict[str, Any], steps: list[dict[str, Any]]) -> Tree:
    tree = Tree(Text.assemble(*title(result)))
    for step in steps:
        node = tree.add(step_label(step))
        for text, style in step_notes(step):
            node.add(Text(text, style=style))
    return tree


def result_panel(result: dict[str, Any], steps: list[dict[str, Any]] | None = None) -> Group:
    parts: list[Any] = []
    if steps is not None:
        parts.append(step_tree(result, steps))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    for key, (text, style) in summary(result):
        grid.add_row(key, Text(text, style=style))
    parts.append(grid)
    return Group(*parts)


def run_time(result: Any) -> str:
    """How long the run took; for one that has not ended, how long it has been going (never a stale 0ms)."""
    from ductape_cli.render.plain import run_time as plain_run_time

    return plain_run_time(result)


def status_view(info: Any) -> Group:
    """`ductape status`: the step tree and summary, then children and lineage links."""
    parts: list[Any] = [result_panel(info, info["steps"])]
    parts.extend(Text(line) for line in status_links(info))
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
            Text(item["timestamp"], style="dim"),
            Text(str(item["type"]), style="bold"),
            Text(item.get("step") or "-"),
            Text(json.dumps(item["payload"], default=str, ensure_ascii=False)),
        )
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
    for column in (
        "run",
        "workflow",
        "status",
        "env",
        "started",
        "duration",
        *(("metadata",) if with_metadata else ()),
    ):
        table.add_column(column)
    for run in runs:
        cells: list[Any] = [
            Text(run.id),
            Text(run.tag),
            status_text(str(run.status)),
            Text(run.env or "-"),
            when(run.created_at),
            format_duration(run.execution_time_ms if run.ended_at else None),
        ]
        if with_metadata:
            cells.append(
                Text(", ".join(f"{k}={v}" for k, v in sorted(run.metadata.items())) or "-")
            )
        table.add_row(*cells)
    return table


EVENT_STYLE = {
    "workflow_started": "bold",
    "workflow_completed": "bold green",
    "workflow_failed": "bold red",
    "workflow_rolled_back": "bold magenta",
    "workflow_cancelled": "bold yellow",
    "step_completed": "green",
    "step_failed": "red",
    "step_retried": "yellow",
    "step_skipped": "yellow",
    "rollback_started": "magenta",
    "step_rolled_back": "magenta",
    "step_rollback_failed": "red",
    "signal_received": "cyan",
    "signal_waiting": "cyan",
    "sleep_started": "cyan",
    "checkpoint_created": "blue",
    "log": "dim",
}


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
            details = f"[{data.get('level')}] {data.get('message')}" + (
                f" {short(data['data'], 80)}" if data.get("data") else ""
            )
        else:
            details = " ".join(f"{k}={short(v, 60)}" for k, v in data.items() if v is not None)
        label = Text(event["type"], style=EVENT_STYLE.get(event["type"], ""))
        if step:
            label.append(f" {step}", style="bold")
        ts = event["timestamp"] / 1000
        table.add_row(
            datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3],
            str(event["timestamp"] - start),
            label,
            details,
        )
    return table


def step_detail(detail: dict[str, Any]) -> Group:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    for key, (text, style) in step_rows(detail):
        grid.add_row(key, Text(text, style=style))
    attempts = Table(box=None, header_style="bold", title="attempts", title_justify="left")
    for column in ATTEMPT_COLUMNS:
        attempts.add_column(column)
    for row in attempt_rows(detail):
        attempts.add_row(*(Text(text, style=style) for text, style in row))
    return Group(grid, attempts)
