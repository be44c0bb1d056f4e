"""Rich renderables for definitions: `define` trees with what changed, `define --check`, `show`, `workflows`.

The trees are built from the pieces of `render/definition_parts.py`, which the
plain view of `show` joins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ductape_cli.render.definition_parts import (
    definition_facts,
    definition_nodes,
    short_version,
)
from ductape_cli.render.definition_parts import definition_tree as definition_node
from ductape_cli.render.definition_parts import title as title_pieces
from ductape_cli.render.detail_parts import NO_WORKFLOWS, WORKFLOW_COLUMNS, workflow_rows
from ductape_cli.render.lines import Node, Piece

if TYPE_CHECKING:
    from ductape_cli.definitions import Changes, Defined, DefineReport

STATUS_STYLE = {
    "new": "bold green",
    "changed": "bold yellow",
    "unchanged": "dim",
    "fresh": "green",
    "stale": "bold yellow",
    "missing": "bold red",
}


def _text(pieces: list[Piece]) -> Text:
    """One piece as a Text of its style; several assembled (each keeps its own)."""
    if len(pieces) == 1:
        return Text(pieces[0][0], style=pieces[0][1])
    return Text.assemble(*pieces)


def _add(tree: Tree, nodes: list[Node]) -> Tree:
    for label, children in nodes:
        _add(tree.add(_text(label)), children)
    return tree


def definition_tree(
    schema: dict[str, Any], title: Text, changes: Changes | None = None, *, source: bool = False
) -> Tree:
    """The workflow's operations in order, parallel groups nested, removed steps last."""
    return _add(Tree(title, guide_style="dim"), definition_nodes(schema, changes, source=source))


def defined_tree(item: Defined) -> Tree:
    title = Text.assemble(*title_pieces(item.tag, item.name, item.version))
    title.append(f"  {item.status}", style=STATUS_STYLE.get(item.status, ""))
    if item.status == "changed":
        title.append(f" (was v{short_version(item.previous_version)})", style="dim")
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
            short_version(item.previous_version) if item.previous_version else "-",
            short_version(item.version),
            what,
        )
    return Group(table, _summary(report))


def show_definition(record: dict[str, Any]) -> RenderableType:
    label, nodes = definition_node(record)
    tree = _add(Tree(Text.assemble(*label), guide_style="dim"), nodes)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    for key, value in definition_facts(record):
        facts.add_row(key, value)
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
