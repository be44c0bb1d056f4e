"""Rich renderables as plain lines, for pipes and logs: no box characters, no padding, no colour.

Trees indent two spaces a level, tables become one tab-separated line per row
(with the header first), key/value grids `key: value`. The text is the same
the terminal shows, so a pipe loses layout, never content.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ductape_cli.render.lines import grid_lines, table_lines


def flatten(renderable: Any) -> list[str]:
    lines: list[str] = []
    _walk(renderable, lines, 0)
    return lines


def _text(value: Any) -> str:
    if isinstance(value, Text):
        return value.plain
    if isinstance(value, (Tree, Table, Group)):
        return " ".join(line.strip() for line in flatten(value))
    return "" if value is None else str(value)


def _walk(node: Any, lines: list[str], depth: int) -> None:
    pad = "  " * depth
    if isinstance(node, Group):
        for part in node.renderables:
            _walk(part, lines, depth)
    elif isinstance(node, Tree):
        for line in _text(node.label).splitlines() or [""]:
            lines.append(pad + line)
        for child in node.children:
            _walk(child, lines, depth + 1)
    elif isinstance(node, Table):
        _table(node, lines, pad)
    else:
        lines.extend(pad + line for line in _text(node).splitlines())


def _table(table: Table, lines: list[str], pad: str) -> None:
    columns = table.columns
    if table.title:
        lines.append(pad + _text(table.title))
    cells = [[_text(cell) for cell in column.cells] for column in columns]
    rows = [list(row) for row in zip(*cells, strict=True)]
    if not table.show_header and len(columns) == 2:
        lines.extend(grid_lines([(key, value) for key, value in rows], pad))
        return
    header = [_text(c.header) for c in columns] if table.show_header else None
    lines.extend(table_lines(header, rows, pad))
