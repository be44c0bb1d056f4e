"""Rich views of a run's family (`ductape related`) and of two runs side by side (`ductape compare`).

Built from the pieces of `render/lineage_parts.py`, which the plain views join.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ductape_cli.render.lineage_parts import (
    SECTION,
    compare_rows,
    compare_summary,
    family_tree,
)
from ductape_cli.render.lines import Node, Piece


def related_tree(data: dict[str, Any]) -> Tree:
    """The family as a tree: each run under the run it was made from; resumes under the run they continued."""
    return _tree(family_tree(data))


def _tree(node: Node, parent: Tree | None = None) -> Tree:
    label, children = node
    text = Text.assemble(*label)
    tree = Tree(text) if parent is None else parent.add(text)
    for child in children:
        _tree(child, tree)
    return tree


def compare_view(data: dict[str, Any]) -> Group:
    """Run A and run B side by side; cells that differ are highlighted."""
    a, b = data["workflow_ids"]
    table = Table(header_style="bold", show_lines=False, pad_edge=False)
    table.add_column("", style="dim", no_wrap=True)
    table.add_column(a, overflow="fold")
    table.add_column(b, overflow="fold")
    for row in compare_rows(data):
        if row is SECTION:
            table.add_section()
        else:
            table.add_row(*(_cell(cell) for cell in row))
    return Group(table, Text(compare_summary(data), style="dim"))


def _cell(pieces: list[Piece]) -> Text:
    """A cell whose first piece's style is the whole cell's (its padding takes it too)."""
    (text, style), *rest = pieces
    cell = Text(text, style=style)
    for more, more_style in rest:
        cell.append(more, style=more_style)
    return cell
