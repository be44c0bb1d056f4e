"""Records the store returns and the names of statuses and events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Required, TypedDict


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.ROLLED_BACK, RunStatus.CANCELLED}
)


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ROLLED_BACK = "rolled_back"


class OpKind(StrEnum):
    """What a journal row records; replay compares kind and tag at each position."""

    STEP = "step"
    SLEEP = "sleep"
    SIGNAL = "signal"
    CHECKPOINT = "checkpoint"
    VALUE = "value"  # journaled non-deterministic values (now, uuid, random)
    PATCH = "patch"
    ROLLBACK = "rollback"  # a manual trigger_rollback
    CHILD = "child"
    HOOK = "hook"


class EventType(StrEnum):
    WORKFLOW_STARTED = "workflow_started"
    WORKFLOW_RESUMED = "workflow_resumed"
    WORKFLOW_SUSPENDED = "workflow_suspended"
    WORKFLOW_COMPLETED = "workflow_completed"
    WORKFLOW_FAILED = "workflow_failed"
    WORKFLOW_ROLLED_BACK = "workflow_rolled_back"
    WORKFLOW_CANCELLED = "workflow_cancelled"
    STEP_STARTED = "step_started"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    STEP_RETRIED = "step_retried"
    STEP_SKIPPED = "step_skipped"
    CHECKPOINT_CREATED = "checkpoint_created"
    SLEEP_STARTED = "sleep_started"
    SLEEP_COMPLETED = "sleep_completed"
    SIGNAL_WAITING = "signal_waiting"
    SIGNAL_RECEIVED = "signal_received"
    SIGNAL_BUFFERED = "signal_buffered"
    SIGNAL_TIMED_OUT = "signal_timed_out"
    SIGNAL_REFUSED = "signal_refused"
    CANCEL_REQUESTED = "cancel_requested"
    ROLLBACK_STARTED = "rollback_started"
    STEP_ROLLED_BACK = "step_rolled_back"
    STEP_ROLLBACK_FAILED = "step_rollback_failed"
    STEP_ROLLBACK_RETRIED = "step_rollback_retried"
    ROLLBACK_COMPLETED = "rollback_completed"
    CHILD_STARTED = "child_started"
    CHILD_COMPLETED = "child_completed"
    HOOK_CREATED = "hook_created"
    HOOK_RECEIVED = "hook_received"
    PATCH_APPLIED = "patch_applied"
    LOG = "log"
    CUSTOM = "custom"


class Lifecycle(StrEnum):
    """What observers and engine listeners hear beside the stored `EventType`s: never journaled.

    An observer's `kind` is an `EventType` where the moment is also a history
    event (a step completing, a checkpoint, a sleep starting) and a `Lifecycle`
    member otherwise; both are `str`, so ``kind == "step_completed"`` works."""

    RUN_CREATED = "run_created"
    RUN_DISCARDED = "run_discarded"  # an idempotency key named an existing run
    EXECUTION_STARTED = "execution_started"
    EXECUTION_ENDED = "execution_ended"
    FINISHED = "finished"
    WAITING = "waiting"
    WAIT_ENDED = "wait_ended"
    CHILD_ENDED = "child_ended"
    STEP_ROLLBACK_STARTED = "step_rollback_started"


class StreamType(StrEnum):
    """The live stream's own names (`serve`'s subscribe and the dashboard); every other stream
    event carries its `EventType` name."""

    STATUS_CHANGED = "status_changed"
    COMPLETED = "completed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"


Observed = EventType | Lifecycle  # the kinds an observer or listener is called with


class ErrorCode(StrEnum):
    """Codes the engine gives a run's error (errors raised by code carry their own `code`)."""

    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    MAX_EVENTS_EXCEEDED = "MAX_EVENTS_EXCEEDED"
    SIGNAL_TIMEOUT = "SIGNAL_TIMEOUT"
    CHILD_FAILED = "CHILD_FAILED"
    HANDLER_ERROR = "HANDLER_ERROR"
    STEP_NOT_AWAITED = "STEP_NOT_AWAITED"
    OUTPUT_NOT_JSON = "OUTPUT_NOT_JSON"
    WORKFLOW_NOT_LOADABLE = "WORKFLOW_NOT_LOADABLE"


@dataclass(frozen=True)
class RunError:
    """Why a run ended badly: stored as ``{"message", "step", "code", ...}`` (the seed's shape).

    `extra` keeps keys a stored error had beyond the three (read back for an
    interrupted rollback), so a round trip loses nothing."""

    message: str
    code: str
    step: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "step": self.step, "code": self.code, **self.extra}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunError:
        extra = {k: v for k, v in data.items() if k not in ("message", "step", "code")}
        return cls(
            str(data.get("message") or ""),
            str(data.get("code") or "ERROR"),
            data.get("step"),
            extra,
        )


class RollbackStrategy(StrEnum):
    REVERSE_ALL = "reverse_all"
    CRITICAL_ONLY = "critical_only"
    TO_CHECKPOINT = "to_checkpoint"
    NONE = "none"


@dataclass
class Run:
    id: str
    tag: str
    status: RunStatus
    input: Any
    version: str | None = None
    env: str | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    failed_step: str | None = None
    rollback_result: dict[str, Any] | None = None
    context: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    parent_id: str | None = None
    replayed_from: str | None = None
    restarted_from: str | None = None
    resumed_from: str | None = None
    lineage: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    deadline: float | None = None
    owner: str | None = None
    lease_expires_at: float | None = None
    ready_at: float | None = None
    waiting: dict[str, Any] | None = None
    cancel_requested: str | None = None
    current_step: str | None = None
    phase: str | None = None
    schedule_id: str | None = None
    # Not stored: the owner whose lease a claim just took over (metrics count takeovers).
    taken_from: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    lease: str | None = (
        None  # the fencing token of the current claim; every write of its owner carries it
    )
    load_error: str | None = None  # why the last worker could not load its workflow
    load_attempts: int = 0

    @property
    def execution_time_ms(self) -> int:
        if self.started_at is None:
            return 0
        end = self.ended_at if self.ended_at is not None else self.started_at
        return int((end - self.started_at) * 1000)


@dataclass
class StepRecord:
    """One journal row: a step, or any other replayed operation (sleep, signal, ...)."""

    run_id: str
    seq: int
    kind: OpKind
    tag: str
    status: StepStatus
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    has_rollback: bool = False
    critical: bool = False
    rollback_status: str | None = None
    rollback_error: str | None = None
    wake_at: float | None = None
    source: str | None = None

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return int((self.ended_at - self.started_at) * 1000)


@dataclass
class Attempt:
    run_id: str
    seq: int
    attempt: int
    started_at: float
    duration_ms: int
    error: dict[str, Any] | None


@dataclass
class Event:
    id: int
    run_id: str
    ts: float
    type: str
    step: str | None
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "timestamp": int(self.ts * 1000),
            "step": self.step,
            "data": self.data,
        }


@dataclass
class FeedRow:
    """One row of the store's change feed with what it names (see `SqliteStore.read_feed`)."""

    id: int
    run_id: str
    tag: str
    kind: str  # "status", "event" or "step"
    status: str | None
    ts: float | None
    event_type: str | None
    event_step: str | None
    event_data: dict[str, Any]
    step_tag: str | None
    step_output: Any
    step_started_at: float | None
    step_ended_at: float | None
    step_attempts: int | None
    run_output: Any


@dataclass
class Signal:
    id: int
    run_id: str
    name: str
    payload: Any
    created_at: float
    consumed_seq: int | None


class Definition(TypedDict):
    """One stored version of a workflow's compiled definition (`ductape define`)."""

    tag: str
    version: str
    name: str | None
    source_path: str | None
    schema: dict[str, Any]
    created_at: float


class Schedule(TypedDict, total=False):
    """A stored schedule (`ductape dispatch`): what it starts, when, and what it did so far.
    `id`, `tag`, `kind` and `created_at` are always there; the store fills every other key it reads."""

    id: Required[str]
    tag: Required[str]
    kind: Required[str]  # "cron" or "once"
    created_at: Required[float]
    input: Any
    env: str | None
    cron: str | None
    timezone: str | None
    run_at: float | None
    next_fire_at: float | None
    options: dict[str, Any]
    paused: bool
    last_fired_at: float | None
    last_run_id: str | None
    fire_count: int
    missed: list[float]
