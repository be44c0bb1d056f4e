"""`ductape.toml` parsed once per edit: tomllib's result kept as JSON in the project's `.ductape/`.

Importing tomllib and parsing is ~8% of a short `ductape run`; a hit costs a
file read and `json.loads`. The cache holds the exact TOML text it was made
from, so any edit is a miss whatever the file's timestamps say. Documents with
dates or times (not JSON) are not cached, and where `.ductape/` does not exist
or cannot be written there is simply no cache.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CACHE_NAME = "config-cache.json"


def parse_toml(text: str, root: Path) -> dict[str, Any]:
    """`tomllib.loads(text)` for the project at `root`; a bad document raises tomllib's ValueError."""
    cache = root / ".ductape" / CACHE_NAME
    try:
        kept = json.loads(cache.read_bytes())
        if kept["toml"] == text and isinstance(kept["doc"], dict):
            return kept["doc"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # none yet, or unreadable: parse
    import tomllib

    doc = tomllib.loads(text)
    _keep(cache, text, doc)
    return doc


def _keep(cache: Path, text: str, doc: dict[str, Any]) -> None:
    if not cache.parent.is_dir():
        return  # never create the folder: that is the store's (and `ductape init`'s) job
    try:
        data = json.dumps({"toml": text, "doc": doc}, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError):
        return  # a date or time value: not JSON
    partial = cache.with_name(f".{CACHE_NAME}.{os.getpid()}")
    try:
        fd = os.open(
            partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600
        )  # the TOML may hold secrets
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(partial, cache)  # readers see the old file or the new one, never half of one
    except OSError:
        partial.unlink(missing_ok=True)
