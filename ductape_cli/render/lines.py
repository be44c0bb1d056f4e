"""The plain-lines layout every piped view shares, with no rich import.

A view is built once as (text, style) pieces (`Piece`); the terminal view
styles them with Rich, the plain view joins them here. `flatten` lays out Rich
renderables by these same rules, so a view with a rich-free builder and one
flattened from Rich print alike: trees indent two spaces a level, tables are
one tab-separated line a row under their header, grids are `key: value`.
"""

from __future__ import annotations

from datetime import UTC, datetime

Piece = tuple[str, str]  # (text, rich style)
Node = tuple[list[Piece], list["Node"]]  # a tree: its label, its children


def joined(pieces: list[Piece]) -> str:
    return "".join(text for text, _ in pieces)


def when(ts: float | None) -> str:
    """A time in seconds as local `YYYY-MM-DD HH:MM:SS` (`-` for none)."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def grid_lines(rows: list[tuple[str, str]], pad: str = "") -> list[str]:
    """Key/value rows as `key: value`, a value's further lines indented under it."""
    lines = []
    for key, value in rows:
        first, *rest = value.splitlines() or [""]
        lines.append(f"{pad}{key}: {first}".rstrip())
        lines.extend(f"{pad}  {more}" for more in rest)
    return lines


def table_lines(header: list[str] | None, rows: list[list[str]], pad: str = "") -> list[str]:
    """A header line (none without rows) and one tab-separated line a row."""
    lines = []
    if header is not None and rows:
        lines.append(pad + "\t".join(header).rstrip())
    lines.extend(pad + "\t".join(cell.replace("\n", " ") for cell in row).rstrip() for row in rows)
    return lines


def tree_lines(node: Node, depth: int = 0) -> list[str]:
    label, children = node
    pad = "  " * depth
    lines = [pad + line for line in joined(label).splitlines() or [""]]
    for child in children:
        lines.extend(tree_lines(child, depth + 1))
    return lines
