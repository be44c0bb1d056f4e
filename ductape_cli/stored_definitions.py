"""Stored definitions read back: one (`ductape show`), or all of them (`ductape workflows`).

Apart from `definitions.py` (which compiles and saves them), so that reading a
definition never imports the compiler, the recorder or asyncio.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ductape_cli.errors import WorkflowNotFound

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine
    from ductape_cli.models import Definition


def show_definition(engine: Engine, tag: str, version: str | None = None) -> dict[str, Any]:
    """One stored definition (latest, or `version` / a unique prefix of it)."""
    store = engine.store
    record = store.get_definition(tag, version) if version else store.latest_definition(tag)
    if record is not None:
        versions = [d["version"] for d in store.list_definitions(tag)]
        return {**record, "versions": versions}
    stored = store.list_definitions(tag)
    if stored:
        known = ", ".join(d["version"][:12] for d in stored)
        raise WorkflowNotFound(f"workflow {tag!r} has no version {version!r} (stored: {known})")
    known_tags = sorted({d["tag"] for d in store.list_definitions()})
    hint = f"stored: {', '.join(known_tags)}" if known_tags else "nothing is stored yet"
    raise WorkflowNotFound(
        f"no stored definition for workflow {tag!r} ({hint}); run `ductape define` first"
    )


def list_workflows(engine: Engine) -> list[dict[str, Any]]:
    """Each stored workflow once: latest version and name, how many versions, when defined."""
    by_tag: dict[str, list[Definition]] = defaultdict(list)
    for record in engine.store.list_definitions():
        by_tag[record["tag"]].append(record)
    rows = []
    for tag in sorted(by_tag):
        records = sorted(by_tag[tag], key=lambda r: r["created_at"])
        latest = records[-1]
        rows.append(
            {
                "tag": tag,
                "name": latest["name"],
                "version": latest["version"],
                "versions": len(records),
                "steps": len(latest["schema"].get("steps", [])),
                "defined_at": latest["created_at"],
                "first_defined_at": records[0]["created_at"],
                "source_path": latest["source_path"],
            }
        )
    return rows
