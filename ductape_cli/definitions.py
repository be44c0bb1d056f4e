"""Stored definitions as the CLI sees them: define everything, check freshness, show one, list all.

`define_all` discovers the project's workflow modules, compiles each workflow,
compares it with the latest stored version and saves what changed. A module
that fails to import, a tag defined twice, or a workflow that fails to compile
is reported and left out; the others are still compiled (and, unless
checking, saved). Each definition is one row written in one statement, so a
failure never leaves a definition half-written.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ductape_cli.compiler import compile_definition
from ductape_cli.components.checks import undeclared_calls
from ductape_cli.definition import source_hash_of
from ductape_cli.discovery import discover
from ductape_cli.errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    ConfigError,
    DuctapeError,
)
from ductape_cli.render.operations import describe_operation
from ductape_cli.sites import display_path

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine

_STEP_FIELDS = (
    "options",
    "has_rollback",
    "critical",
    "allow_fail",
    "condition",
    "explicit_condition",
    "dynamic",
    "parallel",
)


@dataclass
class Changes:
    """What a new version changes against the previous one."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)  # step tag -> fields that changed
    options: list[str] = field(default_factory=list)  # workflow-level options that changed
    operations: list[str] = field(default_factory=list)  # "+ sleep 5s", "- signal approve"

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.options or self.operations)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "options": self.options,
            "operations": self.operations,
        }


@dataclass
class Defined:
    """One workflow's outcome: `status` is new/changed/unchanged, or with --check missing/stale/fresh."""

    tag: str
    name: str
    status: str
    version: str
    previous_version: str | None
    schema: dict[str, Any]
    changes: Changes | None
    source_path: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "name": self.name,
            "status": self.status,
            "version": self.version,
            "previous_version": self.previous_version,
            "changes": self.changes.to_dict() if self.changes is not None else None,
            "source_path": self.source_path,
            "schema": self.schema,
        }


@dataclass
class DefineReport:
    workflows: list[Defined] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(
        default_factory=list
    )  # component calls naming what ductape.toml does not declare
    check: bool = False
    folder: str = ""

    @property
    def out_of_date(self) -> list[Defined]:
        return [d for d in self.workflows if d.status in ("missing", "stale")]

    @property
    def exit_code(self) -> int:
        if self.check:
            return EXIT_FAILED if self.errors or self.out_of_date else EXIT_OK
        return EXIT_USAGE if self.errors else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "folder": self.folder,
            "ok": self.exit_code == EXIT_OK,
            "workflows": [d.to_dict() for d in self.workflows],
            "errors": self.errors,
            "warnings": self.warnings,
        }


def define_all(engine: Engine, *, check: bool = False) -> DefineReport:
    """Compile every workflow of the project; save new versions unless `check`."""
    folder = engine.config.workflows_dir
    if not folder.is_dir():
        raise ConfigError(
            f"workflows folder {display_path(str(folder))} does not exist "
            f"(set [project] workflows in {engine.config.source})"
        )
    registry = discover(folder)
    report = DefineReport(check=check, folder=display_path(str(folder)))

    places: dict[str, list[str]] = defaultdict(list)
    for module in registry.modules:
        for wf in module.definitions:
            places[wf.tag].append(f"{display_path(str(module.path))}:{wf.source_line or 0}")
    duplicated = {tag for tag, where in places.items() if len(where) > 1}
    for error in registry.errors:
        if "defined twice" in error.message:
            continue  # reported below, naming every file
        where = display_path(str(error.path)) + (f":{error.line}" if error.line else "")
        report.errors.append(f"{where}: {error.message}")
    for tag in sorted(duplicated):
        report.errors.append(
            f"workflow {tag!r} is defined more than once: {' and '.join(places[tag])}"
        )

    # --check writes nothing, not even an empty store file.
    store = engine.store if not check or _store_exists(engine.store_path) else None
    for module in registry.modules:
        for wf in module.definitions:
            if wf.tag in duplicated or registry.by_tag.get(wf.tag) is not wf:
                continue
            try:
                source_hash = source_hash_of(wf)
                schema = compile_definition(wf, source_hash)
            except DuctapeError as exc:
                report.errors.append(exc.message)
                continue
            report.warnings.extend(
                f"workflow {wf.tag!r} at {w}"
                for w in undeclared_calls(engine.config, schema["operations"])
            )
            previous = store.latest_definition(wf.tag) if store is not None else None
            old_schema = previous["schema"] if previous else None
            version = schema["version"]
            if previous is None:
                status = "missing" if check else "new"
            elif previous["version"] != version:
                status = "stale" if check else "changed"
            else:
                status = "fresh" if check else "unchanged"
            stored_hash = old_schema.get("source_hash") if old_schema else None
            if (
                store is not None
                and not check
                and (status != "unchanged" or stored_hash != source_hash)
            ):
                store.save_definition(wf.tag, version, wf.name, wf.source_file or "", schema)
            report.workflows.append(
                Defined(
                    tag=wf.tag,
                    name=wf.name,
                    status=status,
                    version=version,
                    previous_version=previous["version"] if previous else None,
                    schema=schema,
                    changes=diff_schemas(old_schema, schema) if old_schema is not None else None,
                    source_path=wf.source_file or "",
                )
            )
    return report


def _store_exists(store_path: str) -> bool:
    return store_path == ":memory:" or "://" in store_path or Path(store_path).exists()


def diff_schemas(old: dict[str, Any], new: dict[str, Any]) -> Changes:
    """Steps added, removed and changed (with which fields), option and other operation changes."""
    changes = Changes()
    old_steps = {s["tag"]: s for s in old.get("steps", [])}
    new_steps = {s["tag"]: s for s in new.get("steps", [])}
    changes.added = [tag for tag in new_steps if tag not in old_steps]
    changes.removed = [tag for tag in old_steps if tag not in new_steps]
    for tag, step in new_steps.items():
        if tag in old_steps:
            before, after = old_steps[tag], step
            fields = [f for f in _STEP_FIELDS if f != "options" and before.get(f) != after.get(f)]
            old_opts, new_opts = before.get("options") or {}, after.get("options") or {}
            fields += [
                k
                for k in sorted(set(old_opts) | set(new_opts))
                if old_opts.get(k) != new_opts.get(k)
            ]
            if fields:
                changes.changed[tag] = fields
    if old.get("name") != new.get("name"):
        changes.options.append("name")
    old_options, new_options = old.get("options", {}), new.get("options", {})
    changes.options.extend(
        k
        for k in sorted(set(old_options) | set(new_options))
        if old_options.get(k) != new_options.get(k)
    )

    def others(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
        found = {}
        for op in schema.get("operations", []):
            if op.get("kind") != "step":
                key = json.dumps(
                    {k: v for k, v in op.items() if k != "source"}, sort_keys=True, default=str
                )
                found[key] = op
        return found

    before, after = others(old), others(new)
    changes.operations = [
        f"+ {describe_operation(op)}" for key, op in after.items() if key not in before
    ]
    changes.operations += [
        f"- {describe_operation(op)}" for key, op in before.items() if key not in after
    ]
    return changes
