"""`ductape step` and `ductape workflows` as (text, style) pieces, with no rich import.

The terminal views (`views.step_detail`, `definitions.workflows_table`) style
these pieces; the plain views (`step_lines`, `workflows_lines`, for pipes) join
them by the rules of `render/lines.py`, so both show the same words and a
piped command never pays the ~40 ms rich costs to import.
"""

from __future__ import annotations

from typing import Any

from ductape_cli.durations import format_duration
from ductape_cli.render.lines import Piece, grid_lines, joined, table_lines, when
from ductape_cli.render.status_parts import STATUS_STYLE, short

ATTEMPT_COLUMNS = ["#", "started", "duration", "error"]
WORKFLOW_COLUMNS = ["TAG", "NAME", "VERSION", "VERSIONS", "STEPS", "DEFINED"]
NO_WORKFLOWS = "no workflows defined yet; run `ductape define`"


def status_piece(status: str) -> Piece:
    return (status, STATUS_STYLE.get(status, ""))


def step_rows(detail: Any) -> list[tuple[str, Piece]]:
    """The key/value rows of one step: status, attempts, duration, input, output, error, options."""
    rows: list[tuple[str, Piece]] = [
        ("step", (detail["tag"], "bold")),
        ("status", status_piece(detail["status"])),
        ("attempts", (str(detail.get("attempts")), "")),
        ("duration", (format_duration(detail.get("duration")), "")),
    ]
    if detail.get("input") is not None:
        rows.append(("input", (short(detail["input"], 200), "")))
    rows.append(("output", (short(detail.get("output"), 200), "")))
    if detail.get("error"):
        rows.append(("error", (short(detail["error"], 200), "red")))
    if detail.get("rollback_status"):
        rows.append(("rollback", (detail["rollback_status"], "")))
    if detail.get("options"):
        rows.append(("options", (short(detail["options"], 200), "")))
    if detail.get("source"):
        rows.append(("source", (detail["source"], "")))
    return rows


def attempt_rows(detail: Any) -> list[list[Piece]]:
    """One row an attempt: number, start, duration, its error or `ok`."""
    rows = []
    for attempt in detail.get("attempt_log") or []:
        error = attempt.get("error")
        rows.append(
            [
                (str(attempt["attempt"]), ""),
                (when(attempt.get("started_at")), ""),
                (format_duration(attempt.get("duration")), ""),
                (short(error.get("message"), 80), "red") if error else ("ok", "green"),
            ]
        )
    return rows


def step_lines(detail: Any) -> list[str]:
    """`ductape step` to a pipe: `key: value` lines, then the attempts table."""
    lines = grid_lines([(key, text) for key, (text, _) in step_rows(detail)])
    lines.append("attempts")
    rows = [[text for text, _ in row] for row in attempt_rows(detail)]
    return lines + table_lines(ATTEMPT_COLUMNS, rows)


def workflow_rows(rows: list[dict[str, Any]]) -> list[list[Piece]]:
    return [
        [
            (row["tag"], "bold"),
            (row["name"] or "", ""),
            ((row["version"] or "-")[:12], ""),
            (str(row["versions"]), ""),
            (str(row["steps"]), ""),
            (when(row["defined_at"]), ""),
        ]
        for row in rows
    ]


def workflows_lines(rows: list[dict[str, Any]]) -> list[str]:
    """`ductape workflows` to a pipe: a header line and one tab-separated line a workflow."""
    if not rows:
        return [NO_WORKFLOWS]
    return table_lines(
        WORKFLOW_COLUMNS, [[joined([p]) for p in row] for row in workflow_rows(rows)]
    )
