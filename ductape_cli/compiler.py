"""`ductape define`: record a workflow's handler and turn what it did into a versioned schema.

The handler runs once per `record_scenarios` entry (or once) in recording mode
(see `ductape_cli.recording`). Steps seen in several recordings are merged in
order; each gets the condition its recording implies: the scenario's input
values, and the fields of any `branch_overrides` result the handler received
before reaching it. The schema's version is a hash of what it says (steps,
conditions, options), not of where in the file things are, so moving code or
editing a step function's body keeps the version; `source_hash` (module text
plus options) is what tells whether a stored definition needs recompiling.
"""

from __future__ import annotations

import hashlib
import json
import sysconfig
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ductape_cli import conditions, placeholders, recording
from ductape_cli.definition import SCHEMA_FORMAT as FORMAT
from ductape_cli.definition import WorkflowDefinition, source_hash_of
from ductape_cli.errors import DefinitionError
from ductape_cli.mappings import deep_merge
from ductape_cli.sites import display_path

# Keys that say where things are or what to tell a person, not what the workflow does.
_UNVERSIONED = ("version", "source_hash", "source_file", "source_line", "warnings")
_LIBRARY_DIRS = tuple(
    {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    | set(recording._PACKAGE_DIRS)
)


class InvalidCall(DefinitionError):
    """A ctx call that can never be valid (a malformed condition, a bad literal duration or step
    option, a duplicate tag, an undeclared signal). Even `run`, which compiles leniently, refuses
    to start a workflow with one: it would run the steps before it and then fail."""


def version_of(schema: Mapping[str, Any]) -> str:
    """Content hash of what a schema says; source positions and warnings do not count."""
    content = {k: v for k, v in schema.items() if k not in _UNVERSIONED}
    for key in ("steps", "operations"):
        content[key] = [
            {k: v for k, v in op.items() if k != "source"} for op in schema.get(key, [])
        ]
    text = json.dumps(
        content, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def compile_definition(
    wf: WorkflowDefinition, source_hash: str | None = None, *, strict: bool = True
) -> dict[str, Any]:
    """Record `wf` and return its schema; a broken workflow raises `DefinitionError`.

    Mistakes caught at a ctx call (malformed condition, literal bad duration, bad
    step option, duplicate tag, undeclared signal) always raise. So does the
    handler raising while recording (typically a placeholder used as a real
    value), unless `strict` is off: then the schema keeps what was recorded until
    then and says why in ``incomplete``, since the real handler may run fine.
    """
    incomplete: list[str] = []
    recordings = [
        (scenario, _record(wf, scenario, index, strict, incomplete))
        for index, scenario in enumerate(_scenarios(wf))
    ]
    for scenario, rec in recordings:
        _drop_undecided_branch_conditions(wf, scenario, rec)
    merged = _merge(recordings)
    warnings = list(dict.fromkeys(w for _, r in recordings for w in r.warnings))
    used = set().union(*(r.overrides_used for _, r in recordings))
    for name in wf.branch_overrides:
        if name not in used:
            warnings.append(
                f"branch_overrides names {name!r}, which the handler never reached while recording"
            )
    schema: dict[str, Any] = {
        "format": FORMAT,
        "tag": wf.tag,
        "name": wf.name,
        "options": wf.options_summary(),
        "recording": {
            "branch_overrides": placeholders.to_json(wf.branch_overrides),
            "record_input": placeholders.to_json(wf.record_input),
            "record_scenarios": placeholders.to_json(wf.record_scenarios),
        },
        "source_file": wf.source_file,
        "source_line": wf.source_line,
        "steps": [m.step_entry() for m in merged if m.kind == "step"],
        "operations": [m.operation_entry() for m in merged],
        "warnings": warnings,
    }
    if incomplete:
        schema["incomplete"] = incomplete
    schema["version"] = version_of(schema)
    schema["source_hash"] = source_hash or source_hash_of(wf)
    return schema


# -- recording ----------------------------------------------------------------------------------------


def _scenarios(wf: WorkflowDefinition) -> list[dict[str, Any] | None]:
    for index, scenario in enumerate(wf.record_scenarios):
        if not isinstance(scenario, Mapping):
            raise DefinitionError(
                f"workflow {wf.tag!r}: record_scenarios[{index}] must be a dict of input values"
            )
    return list(wf.record_scenarios) or [None]


def _record(
    wf: WorkflowDefinition,
    scenario: dict[str, Any] | None,
    index: int,
    strict: bool,
    incomplete: list[str],
) -> recording.Recording:
    where = (
        f" (record_scenarios[{index}] = {recording.json_dumps(scenario)})"
        if scenario is not None
        else ""
    )
    try:
        return _recording(wf, scenario, wf.branch_overrides)
    except recording.HandlerFailed as failed:
        exc = failed.error
        if isinstance(exc, KeyboardInterrupt):
            raise exc from None
        if isinstance(exc, (recording.RecordingError, recording.RecordingLimit)):
            at = f" at {display_path(exc.site)}" if exc.site else ""
            error = InvalidCall if isinstance(exc, recording.RecordingError) else DefinitionError
            raise error(f"workflow {wf.tag!r}{where}{at}: {exc.message}") from None
        message = _handler_error(wf, exc, where, failed.recording)
        if strict:
            raise DefinitionError(message) from None
        incomplete.append(message)
        return failed.recording


def _recording(
    wf: WorkflowDefinition, scenario: dict[str, Any] | None, overrides: Mapping[str, Any]
) -> recording.Recording:
    base = dict(wf.record_input or {})
    return recording.record(
        wf.handler,
        tag=wf.tag,
        input=deep_merge(base, scenario) if scenario is not None else base,
        overrides=overrides,
        signals=wf.signals,
        is_async=wf.is_async,
    )


def _drop_undecided_branch_conditions(
    wf: WorkflowDefinition, scenario: dict[str, Any] | None, rec: recording.Recording
) -> None:
    """Keep an override's inferred condition only on the ops that depend on the branch.

    Each step override with a boolean in it is recorded again with its booleans negated;
    an op the handler reaches either way does not depend on that branch, so it loses the
    conditions that override implied. (Overrides without booleans cannot be negated: their
    conditions stay, as descriptions; only explicit `condition=` options skip steps.)
    """
    for name in sorted(rec.overrides_used):
        value = wf.branch_overrides.get(name)
        negated = _negate(value)
        if negated is None:
            continue
        try:
            other = _recording(wf, scenario, {**wf.branch_overrides, name: negated})
        except (
            recording.HandlerFailed
        ) as failed:  # the other branch may raise: what it reached still counts
            other = failed.recording
        reached = {op.key for op in other.ops}
        implied = {conditions.to_text(n) for n in recording.override_conditions(name, value)}
        for op in rec.ops:
            if op.key in reached:
                op.implied = [n for n in op.implied if conditions.to_text(n) not in implied]


def _negate(value: Any) -> Any:
    """`value` with every boolean leaf flipped; None when it has no boolean to flip."""
    flipped = False

    def walk(item: Any) -> Any:
        nonlocal flipped
        if isinstance(item, bool):
            flipped = True
            return not item
        if isinstance(item, Mapping):
            return {key: walk(inner) for key, inner in item.items()}
        return item

    result = walk(value)
    return result if flipped else None


def _handler_error(
    wf: WorkflowDefinition, exc: BaseException, where: str, rec: recording.Recording
) -> str:
    """Whatever the handler raised, as one line with where it happened and, if we can tell, how to fix it."""
    site = _user_frame(exc)
    at = f" at {display_path(site)}" if site else ""
    text = " ".join(str(exc).split())
    kind = "TypeError" if isinstance(exc, placeholders.PlaceholderUsed) else type(exc).__name__
    message = f"workflow {wf.tag!r}{where} raised {kind} while recording{at}" + (
        f": {text}" if text else ""
    )
    hint = _hint(exc)
    if hint is None and rec.warnings:
        hint = rec.warnings[-1]  # e.g. it iterated over a placeholder, so a list came out empty
    return f"{message}; {hint}" if hint else message


def _user_frame(exc: BaseException) -> str | None:
    """``file:line`` of the innermost traceback frame in the user's code."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if not frame.filename.startswith(_LIBRARY_DIRS) and not frame.filename.startswith("<"):
            found = f"{frame.filename}:{frame.lineno}"
    return found


def _hint(exc: BaseException) -> str | None:
    if isinstance(exc, placeholders.PlaceholderUsed):
        ph = exc.placeholder
        field = repr(ph.path[0]) if ph.path else "'field'"
        if ph.root == "Input":
            if exc.how == "comparison":
                return (
                    f"record each branch with record_scenarios=[{{{field}: ...}}, ...], "
                    f"or give sample input with record_input={{{field}: ...}}"
                )
            fallback = ", or use ctx.default(value, fallback)" if exc.how == "truth test" else ""
            return f"give sample input with record_input={{{field}: ...}}{fallback}"
        if ph.root in ("Step", "Signal", "Child", "Hook"):
            name = (ph.tag or "").split(",")[0]
            if ph.root == "Signal" and ph.path == ("_signal",):
                return f"say which signal arrives while recording with branch_overrides={{{name!r}: {{...payload}}}}"
            value = f"{{{field}: ...}}" if ph.path else "..."
            return (
                f"say what it returns while recording with branch_overrides={{{name!r}: {value}}}"
            )
        return "its value is only known at run time: use it inside a step function"
    text = str(exc)
    if "$Input{" in text or "$Step{" in text or "Placeholder" in text or "Recorded" in text:
        return (
            "a placeholder was used as a real value: give sample values with record_input / "
            "record_scenarios, or step results with branch_overrides"
        )
    return None


# -- merging recordings ----------------------------------------------------------------------------------


@dataclass
class _Merged:
    op: recording.Op
    branch_conditions: list[conditions.Node | None] = field(
        default_factory=list
    )  # without the scenario's input
    conditions: list[conditions.Node | None] = field(default_factory=list)
    dynamic: bool = False
    has_rollback: bool = False

    @property
    def kind(self) -> str:
        return self.op.kind

    def condition(self) -> conditions.Node | None:  # type: ignore[name-defined]
        """One condition per recording the op appeared in, ``||``-ed; any unconditional one wins."""
        if not self.conditions or any(c is None for c in self.conditions):
            return None
        unique = {conditions.to_text(c): c for c in self.conditions if c is not None}
        return conditions.disjunction(list(unique.values()))

    def step_entry(self) -> dict[str, Any]:
        data = self.op.data
        implied = self.condition()
        explicit: conditions.Node | None = data.get("explicit")
        effective = (
            conditions.conjunction([n for n in (explicit, implied) if n is not None])
            if (explicit or implied)
            else None
        )
        entry: dict[str, Any] = {
            "kind": "step",
            "tag": self.op.label,
            "options": data["options"],
            "has_rollback": self.has_rollback,
            "critical": data["critical"],
            "allow_fail": data["allow_fail"],
            "condition": conditions.to_text(effective) if effective is not None else None,
            "explicit_condition": explicit is not None,
            "dynamic": self.dynamic,
            "source": self.op.source,
        }
        if explicit is not None and implied is not None:
            entry["implied_condition"] = conditions.to_text(implied)
        if "parallel" in data:
            entry["parallel"] = data["parallel"]
        return entry

    def operation_entry(self) -> dict[str, Any]:
        if self.kind == "step":
            entry = {"kind": "step", "tag": self.op.label}
            if "parallel" in self.op.data:
                entry["parallel"] = self.op.data["parallel"]
            return entry
        condition = self.condition()
        return {
            "kind": self.kind,
            **self.op.data,
            "condition": conditions.to_text(condition) if condition is not None else None,
            "source": self.op.source,
        }


def _scenario_condition(scenario: Mapping[str, Any] | None) -> conditions.Node | None:
    """``$Input{k} == v`` for each scalar leaf of a scenario, ``&&``-ed."""
    if scenario is None:
        return None
    found: list[conditions.Node] = []

    def walk(value: Any, path: tuple[str, ...]) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(inner, (*path, str(key)))
        elif path and (value is None or isinstance(value, (bool, int, float, str))):
            try:
                found.append(
                    conditions.Compare("==", conditions.InputRef(path), conditions.Literal(value))
                )
            except (TypeError, ValueError):
                pass  # not expressible (odd key or non-finite number): the scenario just does not constrain it

    walk(scenario, ())
    return conditions.conjunction(found) if found else None


def _merge(recordings: list[tuple[dict[str, Any] | None, recording.Recording]]) -> list[_Merged]:
    """Ops of all recordings in one order.

    Ops new to the merge are placed just before the next op this recording shares
    with earlier ones (so branch-specific steps sit between the common steps
    around them), or at the end when none follows.
    """
    order: list[str] = []
    merged: dict[str, _Merged] = {}
    for scenario, rec in recordings:
        base = _scenario_condition(scenario)
        last = -1
        new: list[str] = []
        for op in rec.ops:
            parts = [n for n in (base, *op.implied) if n is not None]
            condition = conditions.conjunction(_unique(parts)) if parts else None
            branch = conditions.conjunction(_unique(list(op.implied))) if op.implied else None
            entry = merged.get(op.key)
            if entry is None:
                entry = merged[op.key] = _Merged(op)
                new.append(op.key)
            else:
                index = order.index(op.key)
                if index > last:
                    order[index:index] = new
                    last = index + len(new)
                else:  # the recordings disagree on order: keep this one's new ops after its last match
                    order[last + 1 : last + 1] = new
                    last += len(new)
                new = []
            entry.conditions.append(condition)
            entry.branch_conditions.append(branch)
            entry.dynamic = entry.dynamic or op.dynamic
            entry.has_rollback = entry.has_rollback or bool(op.data.get("has_rollback"))
        order.extend(new)
    if len(recordings) > 1:
        for entry in merged.values():
            if len(entry.conditions) == len(recordings):
                # Reached in every scenario: it does not depend on the scenarios' input.
                entry.conditions = entry.branch_conditions
    return [merged[key] for key in order]


def _unique(nodes: list[conditions.Node]) -> list[conditions.Node]:
    return list({conditions.to_text(n): n for n in nodes}.values())
