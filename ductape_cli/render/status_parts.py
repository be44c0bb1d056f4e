"""What `status` says about a run, as (text, style) pieces with no rich import (issue 19).

The terminal view (`views.status_view`) styles these pieces; the plain view
(`status_lines`, for pipes) joins them, so both show the same words and a piped
`ductape status` never pays the ~40 ms rich costs to import.
"""

from __future__ import annotations

import json
from typing import Any

from ductape_cli.durations import format_duration

Piece = tuple[str, str]  # (text, rich style)

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


def short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def title(result: dict[str, Any]) -> list[Piece]:
    status = result["status"]
    return [
        (result["workflow_tag"], "bold"),
        ("  ", ""),
        (result["workflow_id"], "dim"),
        ("  ", ""),
        (status, STATUS_STYLE.get(status, "")),
    ]


def step_label(step: dict[str, Any]) -> list[Piece]:
    status = step.get("status", "pending")
    glyph, style = GLYPHS.get(status, ("?", ""))
    kind = step.get("kind", "step")
    pieces: list[Piece] = [(f"{glyph} ", style)]
    if kind == "step":
        pieces.append((step["tag"], "bold"))
    elif kind == "checkpoint":
        pieces.append((f"checkpoint {step['tag']}", "blue"))
    elif kind == "sleep":
        pieces.append(
            (f"sleep {format_duration((step.get('options') or {}).get('duration_ms'))}", "cyan")
        )
    elif kind == "signal":
        pieces.append((f"signal {step['tag']}", "cyan"))
    else:
        pieces.append((f"{kind} {step['tag']}", "dim"))
    duration = step.get("duration")
    if duration is not None and kind == "step":
        pieces.append((f"  {format_duration(duration)}", "dim"))
    attempts = step.get("attempts") or 0
    if attempts > 1:
        pieces.append((f"  {attempts} attempts", "yellow"))
    if step.get("has_rollback"):
        mark = {"completed": "  ↺ rolled back", "failed": "  ↺ rollback failed"}.get(
            step.get("rollback_status") or "", "  ↺"
        )
        pieces.append((mark, "magenta"))
    if step.get("critical"):
        pieces.append(("  critical", "dim"))
    return pieces


def step_notes(step: dict[str, Any]) -> list[Piece]:
    """The lines under a step in the tree: why it failed or was skipped, a failed compensation."""
    notes: list[Piece] = []
    if step.get("status") == "failed" and step.get("error"):
        notes.append((short(step["error"].get("message"), 120), "red"))
    elif step.get("status") == "skipped":
        reason = step.get("reason") or ((step.get("options") or {}).get("skip") or {}).get(
            "condition"
        )
        if step.get("error"):
            reason = f"allowed to fail: {short(step['error'].get('message'), 100)}"
        if reason:
            text = (
                f"skipped: {reason}"
                if not str(reason).startswith(("skipped", "not reached", "allowed"))
                else str(reason)
            )
            notes.append((text, "yellow"))
    if step.get("rollback_error"):
        notes.append((f"rollback failed: {step['rollback_error']}", "red"))
    return notes


def summary(result: dict[str, Any]) -> list[tuple[str, Piece]]:
    """The key/value rows under the tree: status, run, time, output, error, rollback, waiting."""
    from ductape_cli.render.plain import run_time

    status = result["status"]
    rows: list[tuple[str, Piece]] = [
        ("status", (status, STATUS_STYLE.get(status, ""))),
        ("run", (result["workflow_id"], "")),
        ("time", (run_time(result), "")),
    ]
    if result.get("output") is not None:
        rows.append(("output", (short(result["output"], 200), "")))
    if result.get("error"):
        error = result["error"]
        where = f" (step {error.get('step')})" if error.get("step") else ""
        rows.append(("error", (f"{error.get('message')}{where} [{error.get('code')}]", "red")))
    rollback = result.get("rollback_result")
    if rollback:
        rows.append(
            ("rolled back", (", ".join(rollback.get("rolled_back_steps") or []) or "-", ""))
        )
        for failed in rollback.get("failed_steps") or []:
            rows.append(("rollback failed", (f"{failed['tag']}: {failed['error']}", "red")))
    waiting = result.get("waiting")
    if waiting:
        rows.append(("waiting", (waiting.get("detail", ""), "cyan")))
    return rows


def links(info: dict[str, Any]) -> list[str]:
    """Children, lineage and metadata lines under a status."""
    lines = []
    if info.get("children"):
        lines.append(
            "children: "
            + ", ".join(f"{c['workflow_id']} ({c['status']})" for c in info["children"])
        )
    for key in ("parent_id", "replayed_from", "restarted_from", "resumed_from"):
        if info.get(key):
            lines.append(f"{key}: {info[key]}")
    if info.get("metadata"):
        lines.append(
            "metadata: " + json.dumps(info["metadata"], sort_keys=True, ensure_ascii=False)
        )
    return lines


def _joined(pieces: list[Piece]) -> str:
    return "".join(text for text, _ in pieces)


def status_lines(info: dict[str, Any]) -> list[str]:
    """`ductape status` to a pipe: the step tree indented two spaces a level, then `key: value` lines."""
    lines = [_joined(title(info))]
    for step in info["steps"]:
        lines.extend("  " + line for line in _joined(step_label(step)).splitlines() or [""])
        for text, _ in step_notes(step):
            lines.extend("    " + line for line in text.splitlines())
    for key, (text, _) in summary(info):
        first, *rest = text.splitlines() or [""]
        lines.append(f"{key}: {first}".rstrip())
        lines.extend(f"  {more}" for more in rest)
    for line in links(info):
        lines.extend(line.splitlines())
    return lines
