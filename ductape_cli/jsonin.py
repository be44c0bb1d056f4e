"""JSON that users hand to ductape: strict UTF-8, no NaN or Infinity, and a nesting limit.

Everything a command reads (`--input`, `--data`, `--set`, `--step-output`,
stdin, @files) passes through `parse_json`, so bad bytes, non-standard
numbers and absurd nesting are one clear `InvalidInput`, never a traceback
later in the store or the renderer.
"""

from __future__ import annotations

import json
from typing import Any

from ductape_cli.errors import InvalidInput

MAX_DEPTH = 100  # documented in the README ("Input limits")


class NotJson(InvalidInput):
    """The text is not JSON at all (as opposed to JSON ductape refuses)."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (use null or a string)")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def nesting_depth(value: Any) -> int:
    """How deeply lists and dicts nest in `value` (iterative: no recursion limit to hit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend(
            (child, depth + 1) for child in children if isinstance(child, (dict, list, tuple))
        )
    return deepest


def decode_utf8(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{source} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def parse_json(text: str | bytes, source: str) -> Any:
    """Parse user JSON from `source` (named in errors); refuses what the store could not keep."""
    if isinstance(text, bytes):
        text = decode_utf8(text, source)
    else:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # undecodable argv bytes arrive as lone surrogates
            raise InvalidInput(f"{source} is not UTF-8 text (character {exc.start + 1})") from None
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise NotJson(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise InvalidInput(
            f"{source} nests too deeply; ductape accepts at most {MAX_DEPTH} levels"
        ) from None
    except ValueError as exc:
        raise InvalidInput(f"{source}: {exc}") from None
    depth = nesting_depth(value)
    if depth > MAX_DEPTH:
        raise InvalidInput(
            f"{source} nests {depth} levels deep; ductape accepts at most {MAX_DEPTH}"
        )
    return value
