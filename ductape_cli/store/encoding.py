"""JSON payloads as the store writes and reads them (compact; never pickle).

NaN and Infinity are not JSON: writing one is a `ValueError` (callers turn it
into a clear error), and any left in an older store read back as null, so
ductape never prints invalid JSON.
"""

from __future__ import annotations

import json
from typing import Any

_DECODER = json.JSONDecoder(parse_constant=lambda name: None)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def loads(text: str | None) -> Any:
    return None if text is None else _DECODER.decode(text)


def plain(value: Any) -> Any:
    """`value` as the JSON the store would give back: unknown objects as text, NaN and Infinity as null."""
    return _DECODER.decode(json.dumps(value, default=str))
