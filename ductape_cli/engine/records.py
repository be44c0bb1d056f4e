"""Typed results of the public API (`Engine`), shared by the CLI and the HTTP server.

Each result is the seed's JSON object — a `dict`, so `result["status"]`,
`json.dumps(result)` and code written against the seed keep working — with
typed attributes for every documented key (`result.status`,
`result.completed_steps`) and `to_dict()` for a plain copy. Keys an engine adds
later are kept, never dropped.
"""

from __future__ import annotations

import copy
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")
R = TypeVar("R", bound="Record")


class Key(Generic[T]):
    """A typed attribute over one key of the record (missing key: `default`)."""

    def __init__(self, default: Any = None) -> None:
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Key[T]: ...
    @overload
    def __get__(self, obj: Record, owner: type) -> T: ...
    def __get__(self, obj: Record | None, owner: type) -> Key[T] | T:
        if obj is None:
            return self
        if self.name in obj:
            return obj[self.name]
        return copy.copy(self.default)

    def __set__(self, obj: Record, value: T) -> None:
        obj[self.name] = value


class Record(dict[str, Any]):
    """A JSON object with typed attributes."""

    @classmethod
    def from_dict(cls: type[R], data: Any) -> R:
        return data if type(data) is cls else cls(data)

    @classmethod
    def keys_declared(cls) -> list[str]:
        """The documented keys, in declaration order (base classes first)."""
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            names.extend(n for n, v in vars(klass).items() if isinstance(v, Key) and n not in names)
        return names

    def to_dict(self) -> dict[str, Any]:
        """A plain `dict` copy (nested records too), as `--json` prints it."""
        return {k: _plain(v) for k, v in self.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def iso_ms(ms: int | float) -> str:
    """Epoch milliseconds as ISO 8601 UTC with milliseconds, as `history` prints times."""
    from datetime import UTC, datetime

    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class RunResult(Record):
    """The seed's `WorkflowResult`, plus `workflow_tag`, what an unfinished run waits for (`waiting`),
    and, for runs made from runs, `replayed_from` / `restarted_from` / `resumed`."""

    workflow_id = Key[str]()
    workflow_tag = Key[str]()
    status = Key[str]()
    output = Key[Any]()
    error = Key["dict[str, Any] | None"]()
    completed_steps = Key["list[str]"]([])
    failed_step = Key["str | None"]()
    execution_time = Key[int](0)
    rollback_result = Key["dict[str, Any] | None"]()
    waiting = Key["dict[str, Any] | None"]()
    replayed_from = Key["str | None"]()
    restarted_from = Key["str | None"]()
    resumed = Key["dict[str, Any] | None"]()


class CancelResult(RunResult):
    """A run after `cancel`: whether it ended cancelled, why, and which steps were rolled back."""

    cancelled = Key[bool](False)
    reason = Key[str]("")
    rolled_back_steps = Key["list[str]"]([])


class RunDetail(RunResult):
    """`status`: the result plus env, input, state, every step (compiled steps not reached
    included, in compiled order), timestamps (epoch seconds), lineage links and children."""

    env = Key["str | None"]()
    version = Key["str | None"]()
    input = Key[Any]()
    state = Key["dict[str, Any]"]({})
    current_step = Key["str | None"]()
    created_at = Key["float | None"]()
    started_at = Key["float | None"]()
    ended_at = Key["float | None"]()
    steps = Key["list[dict[str, Any]]"]([])
    parent_id = Key["str | None"]()
    resumed_from = Key["str | None"]()
    idempotency_key = Key["str | None"]()
    children = Key["list[dict[str, Any]]"]([])
    cancel_requested = Key["str | None"]()


class Attempt(Record):
    """One attempt of a step: when it started (epoch seconds), how long it took (ms), its error."""

    attempt = Key[int]()
    started_at = Key["float | None"]()
    duration = Key["int | None"]()
    error = Key["dict[str, Any] | None"]()


class StepDetail(Record):
    """One step of a run (`ductape step`): status, input, output, error and every attempt."""

    workflow_id = Key[str]()
    seq = Key[int]()
    kind = Key[str]()
    tag = Key[str]()
    status = Key[str]()
    input = Key[Any]()
    output = Key[Any]()
    error = Key["dict[str, Any] | None"]()
    attempts = Key[int](0)
    duration = Key["int | None"]()
    started_at = Key["float | None"]()
    ended_at = Key["float | None"]()
    rollback_status = Key["str | None"]()
    attempt_log = Key["list[Attempt]"]([])


class Family(Record):
    """`related`: every run of a family (original, replays, restarts, resumes, children) in tree order."""

    workflow_id = Key[str]()
    root = Key[str]()
    executions = Key["list[dict[str, Any]]"]([])


class Comparison(Record):
    """`compare`: input, step and output differences of two runs, and every step side by side."""

    workflow_ids = Key["list[str]"]()
    runs = Key["dict[str, dict[str, Any]]"]()
    input_diff = Key["dict[str, list[Any]]"]({})
    step_diffs = Key["list[dict[str, Any]]"]([])
    output_diff = Key["dict[str, list[Any]]"]({})
    steps = Key["list[dict[str, Any]]"]([])


class Schedule(Record):
    """A schedule made by `dispatch`: what it starts, when it fires next (ISO times), what it skipped,
    and (from `get_schedule`) the runs it started."""

    job_id = Key[str]()
    tag = Key[str]()
    kind = Key[str]()
    cron = Key["str | None"]()
    timezone = Key["str | None"]()
    paused = Key[bool](False)
    env = Key["str | None"]()
    input = Key[Any]()
    next_fire_times = Key["list[str]"]([])
    missed = Key["list[str]"]([])
    last_run_id = Key["str | None"]()
    runs = Key["list[dict[str, Any]] | None"]()


class CustomEvent(Record):
    """An event a run emitted with `ctx.emit_event`: ISO time, type, JSON payload, the step it was in."""

    id = Key[int]()
    timestamp = Key[str]()
    type = Key["str | None"]()
    payload = Key[Any]()
    step = Key["str | None"]()
