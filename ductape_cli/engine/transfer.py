"""Take a run home: export a run with its family and definitions to one JSON file, import it elsewhere.

An export is a superset of `ductape history ID --json` (so `replay_history`
reads it as it is) plus every stored row of the run and its descendants
(journal, attempts, events, signals, hooks) and the definition versions they
ran. The store already redacts header values and `secret` fields in step
inputs, history and errors; an export leaves the machine, so it applies the
same redaction to everything it carries, step outputs included (a response
that echoes a secret field back is kept in clear in the local store, never
in an export): every field named in a component's `secret = [...]` becomes
`***`, and every header value and `${VAR}` value the components use is
scrubbed wherever it appears.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ductape_cli.engine.history import export_run
from ductape_cli.errors import InvalidInput

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine

FORMAT = "ductape-run-export"
FORMAT_VERSION = 1
_LINKS = ("parent_id", "replayed_from", "restarted_from", "resumed_from")
_MAX_FAMILY = 10_000


def export_bundle(engine: Engine, run_id: str) -> dict[str, Any]:
    """The run `run_id`, its descendants and their definition versions, as one JSON-able dict."""
    run = engine.get_run(run_id)
    family: list[str] = []
    pending = [run.id]
    while pending and len(family) < _MAX_FAMILY:
        current = pending.pop(0)
        family.append(current)
        pending.extend(c.id for c in engine.store.list_runs(parent_id=current, limit=_MAX_FAMILY))
    runs = [engine.store.export_rows(member) for member in family]
    versions = sorted(
        {
            (r["runs"][0]["tag"], r["runs"][0]["version"])
            for r in runs
            if r["runs"][0].get("version")
        }
    )
    definitions = [
        d for d in (engine.store.get_definition(tag, version) for tag, version in versions) if d
    ]
    bundle = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": datetime.now(tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        **export_run(engine, run.id),
        "runs": runs,
        "definitions": definitions,
    }
    return redacted(bundle, engine.config.raw)


def redacted(value: Any, raw_config: dict[str, Any]) -> Any:
    """`value` with the project's secret fields set to ``***`` and its secret values scrubbed."""
    from ductape_cli.components.errors import redact, scrub

    fields, values = _secrets(raw_config)
    return scrub(redact(value, fields), values)


def _secrets(raw_config: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Field names listed in any `secret = [...]`, and the header values and `${VAR}` values of the component tables."""
    import os
    import re

    variable = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")
    fields: set[str] = set()
    values: set[str] = set()

    def walk(node: Any, key: str | None) -> None:
        if isinstance(node, dict):
            for name, item in node.items():
                if name == "secret" and isinstance(item, list):
                    fields.update(str(f) for f in item)
                elif name == "headers" and isinstance(item, dict):
                    values.update(
                        str(v)
                        for v in item.values()
                        if isinstance(v, str) and not variable.search(v)
                    )
                    walk(item, name)
                else:
                    walk(item, name)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)
        elif isinstance(node, str):
            for match in variable.finditer(node):
                found = os.environ.get(match.group(1))
                if found:
                    values.add(found)

    walk({k: v for k, v in raw_config.items() if k not in ("project", "envs")}, None)
    return fields, values


def read_bundle(source: str) -> dict[str, Any]:
    """An export from a file path, or `-` for stdin; anything else is a clear `InvalidInput`."""
    import sys

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"file {source} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"cannot read {source}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    check_bundle(data, source)
    return data


def check_bundle(data: Any, source: str = "the export") -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput(
            f"{source} is not a ductape export (make one with `ductape export ID > run.json`)"
        )
    if data.get("format_version") != FORMAT_VERSION:
        raise InvalidInput(
            f"{source} has export format version {data.get('format_version')!r}; this ductape reads {FORMAT_VERSION}"
        )
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise InvalidInput(f"{source} holds no runs")
    for bundle in runs:
        rows = bundle.get("runs") if isinstance(bundle, dict) else None
        if (
            not isinstance(rows, list)
            or len(rows) != 1
            or not isinstance(rows[0], dict)
            or not rows[0].get("id")
        ):
            raise InvalidInput(
                f"{source} is damaged: each exported run needs exactly one run row with an id"
            )
        for table, rows in bundle.items():
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise InvalidInput(f"{source} is damaged: {table} must be a list of rows")
    if not isinstance(data.get("definitions", []), list):
        raise InvalidInput(f"{source} is damaged: definitions must be a list")


def import_bundle(engine: Engine, data: dict[str, Any], *, rename: bool = False) -> dict[str, Any]:
    """Load an export into this engine's store; ids are kept, and a taken id refuses the import
    (nothing written) unless `rename`, which gives each taken run a new id and relinks the family.

    Imported runs keep their status; a lease held by the exporting process is dropped, so a
    worker here may continue an unfinished run.
    """
    check_bundle(data)
    bundles = data["runs"]
    ids = [b["runs"][0]["id"] for b in bundles]
    taken = engine.store.existing_run_ids(ids)
    if taken and not rename:
        first = next(i for i in ids if i in taken)
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise InvalidInput(
            f"run {first}{more} already exists in {engine.store_path}; `ductape import --rename` imports under new ids"
        )
    mapping = _new_ids(engine, ids, taken)
    runs = [_relinked(b, mapping) for b in bundles]
    definitions = [
        d
        for d in data.get("definitions", [])
        if isinstance(d, dict) and {"tag", "version", "schema"} <= d.keys()
    ]
    engine.store.import_rows(runs, definitions)
    return {
        "imported": [mapping.get(i, i) for i in ids],
        "workflow_id": mapping.get(ids[0], ids[0]),
        "renamed": mapping,
        "definitions": len(definitions),
    }


def _new_ids(engine: Engine, ids: list[str], taken: set[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    used = set(ids)
    for old in ids:
        if old not in taken:
            continue
        n = 1
        while True:
            candidate = f"{old}-imported" if n == 1 else f"{old}-imported-{n}"
            if candidate not in used and not engine.store.existing_run_ids([candidate]):
                break
            n += 1
        mapping[old] = candidate
        used.add(candidate)
    return mapping


def _relinked(
    bundle: dict[str, list[dict[str, Any]]], mapping: dict[str, str]
) -> dict[str, list[dict[str, Any]]]:
    """A copy of one run's rows with renamed ids applied to every structural reference."""
    out: dict[str, list[dict[str, Any]]] = {}
    for table, rows in bundle.items():
        copied = []
        for row in rows:
            row = dict(row)
            if table == "runs":
                row["id"] = mapping.get(row["id"], row["id"])
                for link in _LINKS:
                    if row.get(link) in mapping:
                        row[link] = mapping[row[link]]
                row["owner"], row["lease_expires_at"] = None, None
            else:
                row["run_id"] = mapping.get(row.get("run_id") or "", row.get("run_id"))
            if (
                table == "steps"
                and row.get("kind") == "child"
                and isinstance(row.get("input"), dict)
            ):
                current = row["input"].get("current")
                if current in mapping:
                    row["input"] = {**row["input"], "current": mapping[current]}
            if table == "events" and isinstance(row.get("data"), dict):
                data = dict(row["data"])
                for key in ("child_id", "retry_of", *_LINKS):
                    if data.get(key) in mapping:
                        data[key] = mapping[data[key]]
                row["data"] = data
            copied.append(row)
        out[table] = copied
    return out
