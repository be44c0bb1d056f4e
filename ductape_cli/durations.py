"""Durations as users write them: ms ints, or strings like "500ms", "5s", "10m", "1h", "1d"."""

from __future__ import annotations

import re

from ductape_cli.errors import InvalidInput

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: int | float | str | None, *, what: str = "duration") -> int | None:
    """Return milliseconds; ints are ms (as in the seed's `sleep(5000)`). None stays None.

    Compound strings ("1h30m") are accepted; anything else is an `InvalidInput`.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"invalid {what} {value!r}: expected milliseconds or a string like '5s'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise InvalidInput(f"invalid {what} {value!r}: must not be negative")
        return int(value)
    if not isinstance(value, str):
        raise InvalidInput(f"invalid {what} {value!r}: expected milliseconds or a string like '5s'")
    text = value.strip().lower()
    if text.isdigit():
        return int(text)
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS_MS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise InvalidInput(
            f"invalid {what} {value!r}: use ms or a number with a unit, e.g. 500ms, 5s, 10m, 1h, 1d"
        )
    return int(total)


def format_duration(ms: float | None) -> str:
    """Short human form: 850ms, 1.2s, 3m 20s, 2h 5m."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {sec}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def write_duration(ms: int) -> str:
    """Exact form as a user writes it in ductape.toml: 1m, 1h30m, 90000 -> 1m30s, 250ms."""
    if ms <= 0:
        return f"{ms}ms"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
