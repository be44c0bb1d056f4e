"""JSON payloads as the store writes and reads them (compact; never pickle).

NaN and Infinity are not JSON: writing one is a `ValueError` (callers turn it
into a clear error), and any left in an older store read back as null, so
ductape never prints invalid JSON.
"""

from __future__ import annotations

import json
from typing import Any

_DECODER = json.JSONDecoder(parse_constant=lambda name: None)


# Columns holding JSON text, per table: encoded when written, decoded when read or exported.
JSON_COLUMNS: dict[str, frozenset[str]] = {
    "runs": frozenset(
        {
            "input",
            "output",
            "error",
            "rollback_result",
            "context",
            "state",
            "lineage",
            "options",
            "waiting",
            "metadata",
        }
    ),
    "steps": frozenset({"input", "output", "error", "options"}),
    "attempts": frozenset({"error"}),
    "events": frozenset({"data"}),
    "signals": frozenset({"payload"}),
    "hooks": frozenset({"data"}),
}


def encoded_values(table: str, fields: dict[str, Any]) -> list[Any]:
    """`fields`' values in order, JSON columns of `table` as text (None stays NULL)."""
    json_columns = JSON_COLUMNS[table]
    return [dumps(v) if k in json_columns and v is not None else v for k, v in fields.items()]


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def loads(text: str | None) -> Any:
    return None if text is None else _DECODER.decode(text)


def plain(value: Any) -> Any:
    """`value` as the JSON the store would give back: unknown objects as text, NaN and Infinity as null."""
    return _DECODER.decode(json.dumps(value, default=str))
