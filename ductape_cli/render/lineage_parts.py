"""`ductape related` and `ductape compare` as (text, style) pieces, with no rich import.

The terminal views (`render/lineage.py`) style these pieces; the plain views
(`related_lines`, `compare_lines`, for pipes) join them by the rules of
`render/lines.py`, so both show the same words without importing rich.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ductape_cli.durations import format_duration
from ductape_cli.render.lines import Node, Piece, joined, table_lines, tree_lines
from ductape_cli.render.status_parts import STATUS_STYLE, short

TYPE_STYLE = {
    "original": "bold",
    "replay": "cyan",
    "restart": "blue",
    "resume": "magenta",
    "child": "dim",
}
DIFF_STYLE = "bold yellow"
Cells = list[list[Piece]]  # a table row: one list of pieces a cell
SECTION = None  # in a row list: a rule between groups of rows (the terminal draws it)


def family_tree(data: dict[str, Any]) -> Node:
    """The family as a tree: each run under the run it was made from; resumes under the run they continued."""
    nodes: dict[str, Node] = {}
    tree: Node | None = None
    for entry in data["executions"]:
        node: Node = (_entry_label(entry, entry["workflow_id"] == data["workflow_id"]), [])
        link = next(
            (
                entry[k]
                for k in ("replayed_from", "restarted_from", "resumed_from", "parent_id")
                if entry.get(k) in nodes
            ),
            None,
        )
        if tree is None:
            tree = node
        else:
            (nodes[link] if link else tree)[1].append(node)
        nodes[entry["workflow_id"]] = node
        for resume in entry.get("resumes", []):
            node[1].append((_resume_label(resume), []))
    return tree if tree is not None else ([("no runs", "")], [])


def _entry_label(entry: dict[str, Any], asked: bool) -> list[Piece]:
    status = entry["status"]
    label: list[Piece] = [
        (f"{entry['type']:<8}", TYPE_STYLE.get(entry["type"], "")),
        (" ", ""),
        (entry["workflow_id"], "bold"),
        ("  ", ""),
        (status, STATUS_STYLE.get(status, "")),
        (f"  {entry['workflow_tag']}", "dim"),
        (f"  {_when(entry.get('created_at'))}", "dim"),
    ]
    if entry.get("from_step"):
        label.append((f"  from step {entry['from_step']}", "cyan"))
    if entry.get("reason"):
        label.append((f"  “{short(entry['reason'], 60)}”", "italic"))
    if asked:
        label.append(("  ◀", "bold yellow"))
    return label


def _resume_label(resume: dict[str, Any]) -> list[Piece]:
    label: list[Piece] = [
        ("↻ resumed", "magenta"),
        (f"  {_when(resume.get('timestamp'))}", "dim magenta"),
    ]
    for key in ("previous_status", "from_step", "from_checkpoint"):
        if resume.get(key):
            label.append((f"  {key.replace('_', ' ')} {resume[key]}", "magenta"))
    if resume.get("skip"):
        label.append((f"  skipped {', '.join(resume['skip'])}", "yellow"))
    return label


def related_lines(data: dict[str, Any]) -> list[str]:
    """`ductape related` to a pipe: the family tree indented two spaces a level."""
    return tree_lines(family_tree(data))


def compare_rows(data: dict[str, Any]) -> list[Cells | None]:
    """Run A and run B side by side: a row a field, `SECTION` between groups; differing cells styled."""
    a, b = data["workflow_ids"]
    runs = data["runs"]
    rows: list[Cells | None] = []

    def name(text: str, differs: bool) -> list[Piece]:
        return [(text, DIFF_STYLE if differs else "dim")]

    def row(label: str, left: Any, right: Any, differs: bool | None = None) -> None:
        if differs is None:
            differs = left != right
        style = DIFF_STYLE if differs else ""
        rows.append([name(label, differs), [(_cell(left), style)], [(_cell(right), style)]])

    status_a, status_b = runs[a]["status"], runs[b]["status"]
    row("workflow", runs[a]["workflow_tag"], runs[b]["workflow_tag"])
    rows.append(
        [
            name("status", status_a != status_b),
            [(status_a, STATUS_STYLE.get(status_a, ""))],
            [(status_b, STATUS_STYLE.get(status_b, ""))],
        ]
    )
    row(
        "duration",
        format_duration(runs[a]["execution_time"]),
        format_duration(runs[b]["execution_time"]),
        False,
    )
    row("error", runs[a]["error"], runs[b]["error"])
    rows.append(SECTION)
    for path, (left, right) in data["input_diff"].items():
        row(f"input.{path}" if path != "$" else "input", left, right, True)
    if not data["input_diff"]:
        row("input", "same", "same", False)
    rows.append(SECTION)
    diffs = {d["step"]: d for d in data["step_diffs"]}
    for step in data["steps"]:
        tag = step["step"]
        rows.append(
            [
                name(f"step {tag}", step["differs"]),
                _step_cell(step[a], diffs.get(tag, {}).get(a), step["differs"]),
                _step_cell(step[b], diffs.get(tag, {}).get(b), step["differs"]),
            ]
        )
    rows.append(SECTION)
    for path, (left, right) in data["output_diff"].items():
        row(f"output.{path}" if path != "$" else "output", left, right, True)
    if not data["output_diff"]:
        row("output", "same", "same", False)
    return rows


def compare_summary(data: dict[str, Any]) -> str:
    return (
        f"{len(data['input_diff'])} input field(s), {len(data['step_diffs'])} step(s) and "
        f"{len(data['output_diff'])} output field(s) differ"
    )


def compare_lines(data: dict[str, Any]) -> list[str]:
    """`ductape compare` to a pipe: a header line (the two run ids), a tab-separated line a field."""
    rows = [[joined(cell) for cell in row] for row in compare_rows(data) if row is not SECTION]
    return [*table_lines(["", *data["workflow_ids"]], rows), compare_summary(data)]


def _step_cell(side: dict[str, Any], diff: dict[str, Any] | None, differs: bool) -> list[Piece]:
    status = side["status"]
    text: list[Piece] = [
        (status, STATUS_STYLE.get(status, ""))
        if status != "not_reached"
        else ("not reached", "dim")
    ]
    if side.get("duration") is not None:
        text.append((f"  {format_duration(side['duration'])}", "dim"))
    if diff is not None:
        if diff.get("error"):
            text.append((f"\n{short(diff['error'], 80)}", "red"))
        elif diff.get("output") is not None:
            text.append((f"\n{short(diff['output'], 80)}", DIFF_STYLE if differs else ""))
    return text


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return short(value, 80)


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
