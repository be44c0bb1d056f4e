"""What a definition keeps of a component call: its shape, never the values it carried.

While recording, `ctx.action.run(app="pay", input={"headers": {"X-Key":
os.environ["KEY"]}})` really evaluates its arguments, so the key is in hand.
A definition is stored, shown and hashed, so it keeps only what the source
says: the call's own expression is found in the module's syntax tree (by the
calling instruction's position) and each argument is kept when it is written
as a literal there (a short preview of long ones), as its placeholder text
when it is ``$Input{...}``/``$Step{...}``, and as its type (``"<str>"``)
otherwise. So the version hash depends on the code, not on the environment
or the size of a buffer.
"""

from __future__ import annotations

import ast
import functools
import linecache
import re
from collections.abc import Mapping
from types import FrameType
from typing import Any

from ductape_cli.placeholders import Placeholder

PREVIEW = 64  # characters of a literal string kept in full
MAX_ITEMS = 20  # entries of a literal list or dict kept
MAX_DEPTH = 8


def call_node(frame: FrameType | None) -> ast.Call | None:
    """The call expression `frame` is executing, from its module's source (None when unknown)."""
    if frame is None:
        return None
    code = frame.f_code
    try:
        position = list(code.co_positions())[frame.f_lasti // 2]
    except (IndexError, ValueError):
        return None
    if None in position:
        return None
    source = "".join(linecache.getlines(code.co_filename, frame.f_globals))
    return _calls(code.co_filename, source).get(position)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=64)
def _calls(filename: str, source: str) -> dict[tuple[int, int, int, int], ast.Call]:
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError):
        return {}
    return {
        (n.lineno, n.end_lineno or n.lineno, n.col_offset, n.end_col_offset or 0): n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
    }


def call_shape(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], node: ast.Call | None
) -> dict[str, Any]:
    """``{"args": {name: shape}, "positional": [shape, ...]}`` for one recorded call."""
    keywords = {k.arg: k.value for k in node.keywords if k.arg} if node is not None else {}
    positional_nodes: list[ast.expr | None] = list(node.args) if node is not None else []
    if any(isinstance(n, ast.Starred) for n in positional_nodes):
        positional_nodes = []
    out: dict[str, Any] = {
        "args": {name: shape(value, keywords.get(name)) for name, value in kwargs.items()}
    }
    if args:
        out["positional"] = [
            shape(value, positional_nodes[i] if i < len(positional_nodes) else None)
            for i, value in enumerate(args)
        ]
    return out


def shape(value: Any, node: ast.expr | None, depth: int = 0) -> Any:
    """`value` as the source wrote it: literals (bounded), placeholders, and types for the rest."""
    if isinstance(value, Placeholder):
        return value.text()
    if depth >= MAX_DEPTH:
        return _kind(value)
    if isinstance(node, ast.Constant) and not isinstance(value, (Mapping, list, tuple)):
        return _preview(value)
    if isinstance(node, ast.JoinedStr) and isinstance(value, str):
        return _fstring(value, node)
    if isinstance(node, ast.Dict) and isinstance(value, Mapping):
        written = {
            k.value: v
            for k, v in zip(node.keys, node.values, strict=True)
            if isinstance(k, ast.Constant)
        }
        items = list(value.items())
        out = {_preview_key(k): shape(v, written.get(k), depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["…"] = f"+{len(items) - MAX_ITEMS} more"
        return out
    if (
        isinstance(node, (ast.List, ast.Tuple))
        and isinstance(value, (list, tuple))
        and len(node.elts) == len(value)
    ):
        kept = [
            shape(v, n, depth + 1)
            for v, n in zip(value[:MAX_ITEMS], node.elts[:MAX_ITEMS], strict=True)
        ]
        return kept + ([f"… +{len(value) - MAX_ITEMS} more"] if len(value) > MAX_ITEMS else [])
    return _runtime(value, depth)


_PLACEHOLDER_TEXT = re.compile(r"\$[A-Z][A-Za-z]*(\{[^{}]*\})*")


def _fstring(value: str, node: ast.JoinedStr) -> str:
    """An f-string as written: its literal parts, and each ``{...}`` as a placeholder or ``<str>``."""
    pattern = "".join(
        re.escape(part.value)
        if isinstance(part, ast.Constant) and isinstance(part.value, str)
        else "(.*?)"
        for part in node.values
    )
    match = re.fullmatch(pattern, value, re.DOTALL)
    if match is None:
        return "<str>"
    groups = iter(match.groups())
    out = []
    for part in node.values:
        if isinstance(part, ast.Constant) and isinstance(part.value, str):
            out.append(part.value)
        else:
            text = next(groups)
            out.append(text if _PLACEHOLDER_TEXT.fullmatch(text) else "<str>")
    return _preview("".join(out))


def _runtime(value: Any, depth: int) -> Any:
    """A value computed at run time: its structure and placeholders, never its data."""
    if isinstance(value, Placeholder):
        return value.text()
    if value is None:
        return None
    if depth < MAX_DEPTH and isinstance(value, Mapping):
        items = list(value.items())[:MAX_ITEMS]
        return {_preview_key(k): _runtime(v, depth + 1) for k, v in items}
    if (
        depth < MAX_DEPTH
        and isinstance(value, (list, tuple))
        and any(isinstance(v, (Placeholder, Mapping)) for v in value)
    ):
        return [_runtime(v, depth + 1) for v in value[:MAX_ITEMS]]
    return _kind(value)


def _kind(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if isinstance(value, (list, tuple)):
        return "<list>"
    if isinstance(value, Mapping):
        return "<dict>"
    if callable(value):
        return f"<function {getattr(value, '__qualname__', type(value).__name__)}>"
    return f"<{type(value).__name__}>"


def _preview(value: Any) -> Any:
    if isinstance(value, str):
        return (
            value
            if len(value) <= PREVIEW
            else f"{value[: PREVIEW - 16]}…(+{len(value) - PREVIEW + 16} chars)"
        )
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, float) and value != value:
        return "nan"
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _kind(value)


def _preview_key(key: Any) -> str:
    text = str(key)
    return text if len(text) <= PREVIEW else text[:PREVIEW] + "…"
