"""Rich views of a run's family (`ductape related`) and of two runs side by side (`ductape compare`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ductape_cli.durations import format_duration
from ductape_cli.render.status_parts import short
from ductape_cli.render.views import status_text

TYPE_STYLE = {
    "original": "bold",
    "replay": "cyan",
    "restart": "blue",
    "resume": "magenta",
    "child": "dim",
}
DIFF_STYLE = "bold yellow"


def related_tree(data: dict[str, Any]) -> Tree:
    """The family as a tree: each run under the run it was made from; resumes under the run they continued."""
    nodes: dict[str, Tree] = {}
    tree: Tree | None = None
    for entry in data["executions"]:
        label = _entry_label(entry, entry["workflow_id"] == data["workflow_id"])
        link = next(
            (
                entry[k]
                for k in ("replayed_from", "restarted_from", "resumed_from", "parent_id")
                if entry.get(k) in nodes
            ),
            None,
        )
        if tree is None:
            node = tree = Tree(label)
        else:
            node = (nodes[link] if link else tree).add(label)
        nodes[entry["workflow_id"]] = node
        for resume in entry.get("resumes", []):
            node.add(_resume_label(resume))
    return tree if tree is not None else Tree("no runs")


def _entry_label(entry: dict[str, Any], asked: bool) -> Text:
    label = Text.assemble(
        (f"{entry['type']:<8}", TYPE_STYLE.get(entry["type"], "")),
        " ",
        (entry["workflow_id"], "bold"),
        "  ",
    )
    label.append_text(status_text(entry["status"]))
    label.append(f"  {entry['workflow_tag']}", style="dim")
    label.append(f"  {_when(entry.get('created_at'))}", style="dim")
    if entry.get("from_step"):
        label.append(f"  from step {entry['from_step']}", style="cyan")
    if entry.get("reason"):
        label.append(f"  “{short(entry['reason'], 60)}”", style="italic")
    if asked:
        label.append("  ◀", style="bold yellow")
    return label


def _resume_label(resume: dict[str, Any]) -> Text:
    label = Text("↻ resumed", style="magenta")
    label.append(f"  {_when(resume.get('timestamp'))}", style="dim")
    for key in ("previous_status", "from_step", "from_checkpoint"):
        if resume.get(key):
            label.append(f"  {key.replace('_', ' ')} {resume[key]}")
    if resume.get("skip"):
        label.append(f"  skipped {', '.join(resume['skip'])}", style="yellow")
    return label


def compare_view(data: dict[str, Any]) -> Group:
    """Run A and run B side by side; cells that differ are highlighted."""
    a, b = data["workflow_ids"]
    runs = data["runs"]
    table = Table(header_style="bold", show_lines=False, pad_edge=False)
    table.add_column("", style="dim", no_wrap=True)
    table.add_column(a, overflow="fold")
    table.add_column(b, overflow="fold")

    def row(name: str, left: Any, right: Any, differs: bool | None = None) -> None:
        if differs is None:
            differs = left != right
        style = DIFF_STYLE if differs else ""
        cells = [c if isinstance(c, Text) else Text(_cell(c), style=style) for c in (left, right)]
        table.add_row(Text(name, style=DIFF_STYLE if differs else "dim"), *cells)

    status_a, status_b = runs[a]["status"], runs[b]["status"]
    row("workflow", runs[a]["workflow_tag"], runs[b]["workflow_tag"])
    table.add_row(
        Text("status", style=DIFF_STYLE if status_a != status_b else "dim"),
        status_text(status_a),
        status_text(status_b),
    )
    row(
        "duration",
        format_duration(runs[a]["execution_time"]),
        format_duration(runs[b]["execution_time"]),
        False,
    )
    row("error", runs[a]["error"], runs[b]["error"])
    table.add_section()
    for path, (left, right) in data["input_diff"].items():
        row(f"input.{path}" if path != "$" else "input", left, right, True)
    if not data["input_diff"]:
        row("input", "same", "same", False)
    table.add_section()
    diffs = {d["step"]: d for d in data["step_diffs"]}
    for step in data["steps"]:
        tag = step["step"]
        left, right = step[a], step[b]
        table.add_row(
            Text(f"step {tag}", style=DIFF_STYLE if step["differs"] else "dim"),
            _step_cell(left, diffs.get(tag, {}).get(a), step["differs"]),
            _step_cell(right, diffs.get(tag, {}).get(b), step["differs"]),
        )
    table.add_section()
    for path, (left, right) in data["output_diff"].items():
        row(f"output.{path}" if path != "$" else "output", left, right, True)
    if not data["output_diff"]:
        row("output", "same", "same", False)
    different = len(data["step_diffs"])
    summary = Text(
        f"{len(data['input_diff'])} input field(s), {different} step(s) and "
        f"{len(data['output_diff'])} output field(s) differ",
        style="dim",
    )
    return Group(table, summary)


def _step_cell(side: dict[str, Any], diff: dict[str, Any] | None, differs: bool) -> Text:
    status = side["status"]
    text = status_text(status) if status != "not_reached" else Text("not reached", style="dim")
    if side.get("duration") is not None:
        text.append(f"  {format_duration(side['duration'])}", style="dim")
    if diff is not None:
        if diff.get("error"):
            text.append(f"\n{short(diff['error'], 80)}", style="red")
        elif diff.get("output") is not None:
            text.append(f"\n{short(diff['output'], 80)}", style=DIFF_STYLE if differs else "")
    return text


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return short(value, 80)


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
