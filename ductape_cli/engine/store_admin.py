"""`ductape store migrate|info|copy`: what the CLI asks, answered from the store package."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ductape_cli.config import ProjectConfig
from ductape_cli.errors import InvalidInput


def location_of(value: str, config: ProjectConfig) -> str:
    """A --from/--to value as a store location: a URL, sqlite:///path, or a path (relative to cwd)."""
    from pathlib import Path

    text = value.strip()
    if not text:
        raise InvalidInput(
            "a store location is empty; give a path, sqlite:///path or postgresql://..."
        )
    if text.startswith("sqlite://"):
        text = text[len("sqlite://") :]
    if "://" in text or text == ":memory:":
        return text
    return str(Path(text).resolve())


def display(location: str) -> str:
    from ductape_cli.store import is_postgres

    if is_postgres(location):
        from ductape_cli.store.postgres import redact

        return redact(location)
    return location


def migrate(location: str) -> dict[str, Any]:
    from ductape_cli.store import open_store
    from ductape_cli.store.admin import schema_before_opening

    before = schema_before_opening(location)
    store = open_store(location)
    try:
        after = store.schema_version()[0]
        return {
            "store": display(location),
            "backend": store.backend,
            "schema_before": before,
            "schema_version": after,
            "applied": after - before,
        }
    finally:
        store.close()


def info(location: str) -> dict[str, Any]:
    from ductape_cli.store import open_store
    from ductape_cli.store.admin import describe

    store = open_store(location)
    try:
        return {"store": display(location), **describe(store)}
    finally:
        store.close()


def copy(source: str, target: str, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    from ductape_cli.store.admin import copy as copy_store

    copied = copy_store(source, target, progress)
    return {"from": display(source), "to": display(target), **copied}
