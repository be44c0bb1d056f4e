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
    rows = len(cells[0]) if cells else 0
    grid = not table.show_header
    if not grid and rows:
        lines.append(pad + "\t".join(_text(c.header) for c in columns).rstrip())
    for i in range(rows):
        row = [column[i] for column in cells]
        if grid and len(row) == 2:
            key, value = row
            first, *rest = value.splitlines() or [""]
            lines.append(f"{pad}{key}: {first}".rstrip())
            lines.extend(f"{pad}  {more}" for more in rest)
        else:
            lines.append(pad + "\t".join(cell.replace("\n", " ") for cell in row).rstrip())
