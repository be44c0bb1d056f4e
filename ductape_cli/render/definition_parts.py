"""Stored definitions as (text, style) pieces, with no rich import: the tree of `show` and `define`.

The terminal views (`render/definitions.py`) style these pieces; the plain
view of `ductape show` (`definition_lines`, for pipes) joins them by the rules
of `render/lines.py`, so both show the same words without importing rich.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ductape_cli.durations import format_duration
from ductape_cli.render.lines import Node, Piece, grid_lines, tree_lines, when
from ductape_cli.render.operations import describe_operation
from ductape_cli.sites import display_path

if TYPE_CHECKING:
    from ductape_cli.definitions import Changes

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


def short_version(version: str | None) -> str:
    return (version or "-")[:12]


def options_text(step: dict[str, Any]) -> str:
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
) -> list[Piece]:
    label: list[Piece] = [(f"{GLYPHS['step']} ", "cyan"), (step["tag"], "bold")]
    if step.get("condition"):
        label.append((f"  if {step['condition']}", "yellow"))
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
        label.append((f"  {text}", style))
    options = options_text(step)
    if options:
        label.append((f"  ({options})", "dim"))
    if added:
        label.append(("  + added", "bold green"))
    elif changed:
        label.append((f"  ~ changed: {', '.join(changed)}", "bold yellow"))
    if source and step.get("source"):
        label.append((f"  {display_path(step['source'])}", "dim"))
    return label


def operation_label(op: dict[str, Any], source: bool = False) -> list[Piece]:
    label: list[Piece] = [
        (f"{GLYPHS.get(op.get('kind', ''), '·')} ", "blue"),
        (describe_operation(op), ""),
    ]
    if op.get("condition"):
        label.append((f"  if {op['condition']}", "yellow"))
    if source and op.get("source"):
        label.append((f"  {display_path(op['source'])}", "dim"))
    return label


def definition_nodes(
    schema: dict[str, Any], changes: Changes | None = None, *, source: bool = False
) -> list[Node]:
    """The workflow's operations in order, parallel groups nested, removed steps last."""
    nodes: list[Node] = []
    steps = {s["tag"]: s for s in schema.get("steps", [])}
    groups: dict[str, Node] = {}
    added = set(changes.added) if changes else set()
    changed = changes.changed if changes else {}

    def leaf(text: str, style: str) -> None:
        nodes.append(([(text, style)], []))

    for op in schema.get("operations", []):
        if op.get("kind") == "step" and op.get("tag") in steps:
            tag = op["tag"]
            label = step_label(steps[tag], changed.get(tag), tag in added, source)
        else:
            label = operation_label(op, source)
        siblings = nodes
        group = op.get("parallel")
        if group:
            if group not in groups:
                groups[group] = ([("⇉ parallel", "blue")], [])
                nodes.append(groups[group])
            siblings = groups[group][1]
        siblings.append((label, []))
    if not schema.get("operations"):
        leaf("no steps recorded", "dim")
    for tag in changes.removed if changes else []:
        leaf(f"- {tag}  removed", "red")
    for line in changes.operations if changes else []:
        if line.startswith("- "):
            leaf(f"{line}  removed", "red")
    if changes and changes.options:
        leaf(f"~ workflow options changed: {', '.join(changes.options)}", "yellow")
    if schema.get("recording_error"):
        leaf(f"✗ not recorded: {schema['recording_error']}", "red")
    for reason in schema.get("incomplete", []):
        leaf(f"✗ recording stopped early: {reason}", "red")
    for warning in schema.get("warnings", []):
        leaf(f"⚠ {warning}", "yellow")
    return nodes


def title(tag: str, name: str, version: str) -> list[Piece]:
    label: list[Piece] = [(tag, "bold")]
    if name and name != tag:
        label.append((f"  {name}", ""))
    label.append((f"  v{short_version(version)}", "cyan"))
    return label


def definition_facts(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The key/value rows under `ductape show`'s tree: when, where, options, versions."""
    schema = record["schema"]
    options = schema.get("options") or {}
    facts = [
        ("defined", when(record.get("created_at"))),
        ("source", display_path(f"{schema.get('source_file')}:{schema.get('source_line')}")),
        ("rollback", str(options.get("rollback_strategy"))),
    ]
    if options.get("product"):
        facts.append(("product", str(options["product"])))
    if options.get("envs"):
        facts.append(
            (
                "envs",
                ", ".join(
                    e["slug"] + ("" if e.get("active", True) else " (inactive)")
                    for e in options["envs"]
                ),
            )
        )
    if options.get("timeout_ms"):
        facts.append(("timeout", format_duration(options["timeout_ms"])))
    if options.get("signals"):
        facts.append(("signals", ", ".join(options["signals"])))
    if options.get("queries"):
        facts.append(("queries", ", ".join(options["queries"])))
    versions = record.get("versions") or []
    if versions:
        facts.append(("versions", f"{len(versions)} (this is v{short_version(record['version'])})"))
    return facts


def definition_tree(record: dict[str, Any]) -> Node:
    """`ductape show`'s tree: the title, then the operations with where each is in the code."""
    label = title(record["tag"], record.get("name") or "", record["version"])
    return (label, definition_nodes(record["schema"], source=True))


def definition_lines(record: dict[str, Any]) -> list[str]:
    """`ductape show` to a pipe: the tree indented two spaces a level, then `key: value` lines."""
    return tree_lines(definition_tree(record)) + grid_lines(definition_facts(record))
