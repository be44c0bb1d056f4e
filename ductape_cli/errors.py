"""One error hierarchy; each error carries the exit code the CLI turns it into.

User-facing errors (`DuctapeError` and subclasses) are printed as one line on
stderr. Control-flow signals that must cross a user's ``except Exception:``
(suspension, cancellation, timeouts) derive from ``BaseException`` instead.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ROLLED_BACK = 3
EXIT_CANCELLED = 4
EXIT_RUNNING = 5


class DuctapeError(Exception):
    """Base of every error ductape reports to a user."""

    exit_code = EXIT_USAGE
    code = "ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(DuctapeError):
    code = "CONFIG_ERROR"


class InvalidInput(DuctapeError):
    code = "INVALID_INPUT"


class Conflict(InvalidInput):
    """The request names something that exists differently: a taken run id, or an idempotency
    key already used with other input. (An `InvalidInput` for the CLI; 409 over HTTP.)"""

    code = "CONFLICT"


class WorkflowNotFound(DuctapeError):
    code = "WORKFLOW_NOT_FOUND"


class RunNotFound(DuctapeError):
    code = "RUN_NOT_FOUND"


class HookNotFound(DuctapeError):
    code = "HOOK_NOT_FOUND"


class ScheduleNotFound(DuctapeError):
    code = "SCHEDULE_NOT_FOUND"


class StoreError(DuctapeError):
    code = "STORE_ERROR"
    transient = False  # worth retrying as is (the store was busy), unlike corruption or a full disk


class StoreBusy(StoreError):
    """Another process held the write lock past the busy timeout: retry later."""

    transient = True


class LeaseLost(DuctapeError):
    """A fenced write found that this process no longer holds the run's lease: another owner took over."""

    code = "LEASE_LOST"


class DefinitionError(DuctapeError):
    """A workflow module or definition is broken (import error, bad option)."""

    code = "DEFINITION_ERROR"


class InvalidState(DuctapeError):
    """The run is not in a state that allows the operation (signal a finished run...)."""

    code = "INVALID_STATE"


class QueryFailed(DuctapeError):
    """A workflow's query handler raised: the question failed, not the command line."""

    exit_code = EXIT_FAILED
    code = "QUERY_FAILED"


class StaleDefinitions(DuctapeError):
    exit_code = EXIT_FAILED
    code = "STALE_DEFINITIONS"


class NonDeterminismError(DuctapeError):
    """Replay reached a different operation than the journal recorded."""

    code = "NON_DETERMINISM"


class StepError(DuctapeError):
    """A workflow authoring mistake detected at a step (duplicate tag, bad output)."""

    code = "STEP_ERROR"


class StepFailed(Exception):
    """Raised in the handler when a step exhausted its retries.

    Catchable by the handler; uncaught, it fails the run and the rollback
    strategy applies.
    """

    def __init__(
        self, step: str, message: str, code: str | None = None, error_type: str | None = None
    ) -> None:
        super().__init__(message)
        self.step = step
        self.message = message
        self.code = code or "STEP_FAILED"
        self.error_type = error_type

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "step": self.step, "code": self.code}


class SignalTimeout(Exception):
    """Raised in the handler when `wait_for_signal` times out. Catchable."""

    def __init__(self, signals: list[str], timeout_ms: int) -> None:
        names = ", ".join(signals)
        super().__init__(f"no signal {names} arrived within {timeout_ms} ms")
        self.signals = signals
        self.timeout_ms = timeout_ms


class ChildWorkflowFailed(Exception):
    """A child workflow ended unsuccessfully; carries the child's error."""

    def __init__(self, child_id: str, status: str, error: dict[str, Any] | None) -> None:
        message = (error or {}).get("message") or f"child workflow {child_id} ended {status}"
        super().__init__(message)
        self.child_id = child_id
        self.status = status
        self.error = error or {}


class WorkflowInterrupt(BaseException):
    """Base of the control-flow exceptions a handler must not swallow."""


class Cancelled(WorkflowInterrupt):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WorkflowTimedOut(WorkflowInterrupt):
    pass


class CircuitBroken(WorkflowInterrupt):
    """The run wrote more events than its `max_events` allows."""


# -- what a store raises (issue 18): every backend turns its driver's errors into these -------


class StoreUnavailable(StoreError):
    """The store's server cannot be reached (refused, gone, no free connection): retry later."""

    code = "STORE_UNAVAILABLE"
    transient = True


class RunIdTaken(Conflict):
    """A run with this id already exists."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"a run with id {run_id!r} already exists")
        self.run_id = run_id


class IdempotencyConflict(Conflict):
    """An idempotency key already names a run started with other input."""


class StepTaken(StoreError):
    """Another owner already recorded this journal position: this process lost the run."""

    code = "STEP_TAKEN"
