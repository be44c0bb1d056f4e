"""Rich renderables for definitions: `define` trees with what changed, `define --check`, `show`, `workflows`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ductape_cli.durations import format_duration
from ductape_cli.recording import display_path
from ductape_cli.render.detail_parts import NO_WORKFLOWS, WORKFLOW_COLUMNS, workflow_rows
from ductape_cli.render.lines import when
from ductape_cli.render.operations import describe_operation

if TYPE_CHECKING:
    from ductape_cli.definitions import Changes, Defined, DefineReport

GLYPHS = {
    "step": "●",
    "sleep": "◷",
    "signal": "✉",
    "checkpoint": "⚑",
    "child": "↳",
    "component": "⚙",
    "rollback": "↺",
    "hook": "⚓",
    "patch": "⎇",
    "event": "✦",
}
STATUS_STYLE = {
    "new": "bold green",
    "changed": "bold yellow",
    "unchanged": "dim",
    "fresh": "green",
    "stale": "bold yellow",
    "missing": "bold red",
}


def _short(version: str | None) -> str:
    return (version or "-")[:12]


def _options_text(step: dict[str, Any]) -> str:
    options = step.get("options") or {}
    parts = []
    if options.get("retries"):
        every = format_duration(options.get("retry_delay_ms") or 0)
        parts.append(f"retries {options['retries']} every {every}")
        if options.get("backoff"):
            parts.append(f"backoff ×{options['backoff']:g}")
        if options.get("max_delay_ms") is not None:
            parts.append(f"max delay {format_duration(options['max_delay_ms'])}")
    if options.get("timeout_ms") is not None:
        parts.append(f"timeout {format_duration(options['timeout_ms'])}")
    if options.get("on_error"):
        parts.append("on_error")
    if "input" in options:
        parts.append("input")
    return ", ".join(parts)


def step_label(
    step: dict[str, Any],
    changed: list[str] | None = None,
    added: bool = False,
    source: bool = False,
) -> Text:
    label = Text()
    label.append(f"{GLYPHS['step']} ", style="cyan")
    label.append(step["tag"], style="bold")
    if step.get("condition"):
        label.append(f"  if {step['condition']}", style="yellow")
    marks = []
    if step.get("has_rollback"):
        marks.append(("↺ rollback", "magenta"))
    if step.get("critical"):
        marks.append(("critical", "red"))
    if step.get("allow_fail"):
        marks.append(("allow_fail", "yellow"))
    if step.get("dynamic"):
        marks.append(("per item", "dim"))
    for text, style in marks:
        label.append(f"  {text}", style=style)
    options = _options_text(step)
    if options:
        label.append(f"  ({options})", style="dim")
    if added:
        label.append("  + added", style="bold green")
    elif changed:
        label.append(f"  ~ changed: {', '.join(changed)}", style="bold yellow")
    if source and step.get("source"):
        label.append(f"  {display_path(step['source'])}", style="dim")
    return label


def operation_label(op: dict[str, Any], source: bool = False) -> Text:
    label = Text()
    label.append(f"{GLYPHS.get(op.get('kind', ''), '·')} ", style="blue")
    label.append(describe_operation(op))
    if op.get("condition"):
        label.append(f"  if {op['condition']}", style="yellow")
    if source and op.get("source"):
        label.append(f"  {display_path(op['source'])}", style="dim")
    return label


def definition_tree(
    schema: dict[str, Any], title: Text, changes: Changes | None = None, *, source: bool = False
) -> Tree:
    """The workflow's operations in order, parallel groups nested, removed steps last."""
    tree = Tree(title, guide_style="dim")
    steps = {s["tag"]: s for s in schema.get("steps", [])}
    groups: dict[str, Tree] = {}
    added = set(changes.added) if changes else set()
    changed = changes.changed if changes else {}
    for op in schema.get("operations", []):
        if op.get("kind") == "step" and op.get("tag") in steps:
            tag = op["tag"]
            label = step_label(steps[tag], changed.get(tag), tag in added, source)
        else:
            label = operation_label(op, source)
        parent: Tree = tree
        group = op.get("parallel")
        if group:
            if group not in groups:
                groups[group] = tree.add(Text("⇉ parallel", style="blue"))
            parent = groups[group]
        parent.add(label)
    if not schema.get("operations"):
        tree.add(Text("no steps recorded", style="dim"))
    for tag in changes.removed if changes else []:
        tree.add(Text(f"- {tag}  removed", style="red"))
    for line in changes.operations if changes else []:
        if line.startswith("- "):
            tree.add(Text(f"{line}  removed", style="red"))
    if changes and changes.options:
        tree.add(Text(f"~ workflow options changed: {', '.join(changes.options)}", style="yellow"))
    if schema.get("recording_error"):
        tree.add(Text(f"✗ not recorded: {schema['recording_error']}", style="red"))
    for reason in schema.get("incomplete", []):
        tree.add(Text(f"✗ recording stopped early: {reason}", style="red"))
    for warning in schema.get("warnings", []):
        tree.add(Text(f"⚠ {warning}", style="yellow"))
    return tree


def _title(tag: str, name: str, version: str) -> Text:
    title = Text()
    title.append(tag, style="bold")
    if name and name != tag:
        title.append(f"  {name}")
    title.append(f"  v{_short(version)}", style="cyan")
    return title


def defined_tree(item: Defined) -> Tree:
    title = _title(item.tag, item.name, item.version)
    title.append(f"  {item.status}", style=STATUS_STYLE.get(item.status, ""))
    if item.status == "changed":
        title.append(f" (was v{_short(item.previous_version)})", style="dim")
    return definition_tree(item.schema, title, item.changes if item.status == "changed" else None)


def _summary(report: DefineReport) -> Text:
    counts: dict[str, int] = {}
    for item in report.workflows:
        counts[item.status] = counts.get(item.status, 0) + 1
    order = ("missing", "stale", "fresh") if report.check else ("new", "changed", "unchanged")
    parts = [f"{counts[s]} {s}" for s in order if counts.get(s)]
    if report.errors:
        parts.append(f"{len(report.errors)} error{'s' if len(report.errors) != 1 else ''}")
    noun = "workflow" if len(report.workflows) == 1 else "workflows"
    head = f"{len(report.workflows)} {noun} in {report.folder}"
    style = "bold green" if report.exit_code == 0 else "bold red"
    return Text(f"{head}: {', '.join(parts) or 'nothing to define'}", style=style)


def define_report(report: DefineReport) -> RenderableType:
    parts: list[RenderableType] = [defined_tree(item) for item in report.workflows]
    parts.append(_summary(report))
    return Group(*parts)


def check_report(report: DefineReport) -> RenderableType:
    table = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    for column in ("", "TAG", "STATUS", "STORED", "CODE", "WHAT CHANGED"):
        table.add_column(column, no_wrap=column != "WHAT CHANGED")
    for item in report.workflows:
        glyph = ("✓", "green") if item.status == "fresh" else ("✗", "red")
        what = ""
        if item.changes:
            c = item.changes
            bits = (
                [f"+{t}" for t in c.added]
                + [f"-{t}" for t in c.removed]
                + [f"~{t}" for t in c.changed]
            )
            bits += [f"options: {', '.join(c.options)}"] if c.options else []
            bits += c.operations
            what = " ".join(bits)
        table.add_row(
            Text(glyph[0], style=glyph[1]),
            item.tag,
            Text(item.status, style=STATUS_STYLE.get(item.status, "")),
            _short(item.previous_version) if item.previous_version else "-",
            _short(item.version),
            what,
        )
    return Group(table, _summary(report))


def show_definition(record: dict[str, Any]) -> RenderableType:
    schema = record["schema"]
    title = _title(record["tag"], record.get("name") or "", record["version"])
    tree = definition_tree(schema, title, source=True)
    options = schema.get("options") or {}
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    facts.add_row("defined", when(record.get("created_at")))
    facts.add_row(
        "source", display_path(f"{schema.get('source_file')}:{schema.get('source_line')}")
    )
    facts.add_row("rollback", str(options.get("rollback_strategy")))
    if options.get("product"):
        facts.add_row("product", str(options["product"]))
    if options.get("envs"):
        facts.add_row(
            "envs",
            ", ".join(
                e["slug"] + ("" if e.get("active", True) else " (inactive)")
                for e in options["envs"]
            ),
        )
    if options.get("timeout_ms"):
        facts.add_row("timeout", format_duration(options["timeout_ms"]))
    if options.get("signals"):
        facts.add_row("signals", ", ".join(options["signals"]))
    if options.get("queries"):
        facts.add_row("queries", ", ".join(options["queries"]))
    versions = record.get("versions") or []
    if versions:
        facts.add_row("versions", f"{len(versions)} (this is v{_short(record['version'])})")
    return Group(tree, facts)


def workflows_table(rows: list[dict[str, Any]]) -> RenderableType:
    if not rows:
        return Text(NO_WORKFLOWS, style="dim")
    table = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    for column in WORKFLOW_COLUMNS:
        table.add_column(column, no_wrap=column in ("TAG", "VERSION", "DEFINED"))
    for row in workflow_rows(rows):
        table.add_row(*(Text(text, style=style) for text, style in row))
    return table
