"""Rollback: choose the completed steps the strategy names, and undo them newest first.

Each handler's outcome is journaled on its step row as it finishes, so a
rollback interrupted by a crash resumes with the ones not yet done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ductape_cli.engine.steps import IN_STEP, call_function
from ductape_cli.models import (
    EventType,
    Lifecycle,
    OpKind,
    RollbackStrategy,
    StepRecord,
    StepStatus,
)

if TYPE_CHECKING:
    from ductape_cli.engine.execution import Execution


def select(execution: Execution, *, manual: bool = False) -> list[StepRecord]:
    """Steps to roll back under the workflow's strategy, newest first.

    `none` disables automatic rollback only: a manual `trigger_rollback` under it
    undoes every completed step, as the seed's example expects.
    """
    strategy = execution.definition.rollback_strategy
    if strategy == RollbackStrategy.NONE:
        if not manual:
            return []
        strategy = RollbackStrategy.REVERSE_ALL
    records = sorted(execution.journal.values(), key=lambda r: r.seq, reverse=True)
    after = -1
    if strategy == RollbackStrategy.TO_CHECKPOINT:
        checkpoints = [r.seq for r in records if r.kind == OpKind.CHECKPOINT]
        after = max(checkpoints, default=-1)
    chosen = []
    for record in records:
        if record.kind != OpKind.STEP or not record.has_rollback or record.seq <= after:
            continue
        if record.status not in (StepStatus.COMPLETED, StepStatus.ROLLED_BACK):
            continue
        if strategy == RollbackStrategy.CRITICAL_ONLY and not record.critical:
            continue
        if (
            record.rollback_status == "completed"
            and record.status == StepStatus.ROLLED_BACK
            and _done_earlier(execution, record)
        ):
            continue
        chosen.append(record)
    return chosen


def _done_earlier(execution: Execution, record: StepRecord) -> bool:
    """A step undone by an earlier manual trigger_rollback is not undone (or reported) again."""
    manual = execution.manual_rollback or {}
    return record.tag in manual.get("rolled_back_steps", [])


async def apply(execution: Execution, records: list[StepRecord], reason: str) -> dict[str, Any]:
    """Run each rollback handler until it succeeds or its retries are spent; failures are
    recorded and the rest still run. Steps already compensated are reported, never re-run."""
    rolled_back: list[str] = []
    failed: list[dict[str, str]] = []
    for record in records:
        if record.rollback_status == "completed":
            rolled_back.append(record.tag)
            continue
        if record.rollback_status == "failed":
            failed.append({"tag": record.tag, "error": record.rollback_error or "rollback failed"})
            continue
        error = await _compensate(execution, record, reason)
        if error is None:
            rolled_back.append(record.tag)
        else:
            failed.append({"tag": record.tag, "error": error})
    return {
        "success": not failed,
        "rolled_back_steps": rolled_back,
        "failed_steps": failed,
        "reason": reason,
    }


async def _compensate(execution: Execution, record: StepRecord, reason: str) -> str | None:
    """One step's compensation with its retries, each failed attempt journaled. The error, or None."""
    store, run_id = execution.store, execution.run.id
    registered = execution.rollbacks.get(record.seq)
    if registered is None:
        message = "rollback handler not registered on replay (did the code change?)"
        _record_failure(execution, record, message, 0)
        return message
    handler, options = registered
    execution.notify(Lifecycle.STEP_ROLLBACK_STARTED, tag=record.tag)
    attempt = 0
    while True:
        attempt += 1
        token = IN_STEP.set(record.tag)
        try:
            await call_function(handler, (record.output,))
        except Exception as exc:  # noqa: BLE001 - one failing compensation must not stop the others
            message = str(exc) or type(exc).__name__
            if attempt <= options.compensation_retries:
                delay = options.delay_ms(attempt, rollback=True)
                now = execution.clock.now()
                store.append_events(
                    run_id,
                    execution.take_events(
                        (
                            now,
                            EventType.STEP_ROLLBACK_RETRIED,
                            record.tag,
                            {"attempt": attempt, "error": message, "delay_ms": delay},
                        )
                    ),
                )
                await execution.clock.sleep(delay / 1000)
                continue
            _record_failure(execution, record, message, attempt)
            return message
        finally:
            IN_STEP.reset(token)
        now = execution.clock.now()
        data: dict[str, Any] = {"reason": reason, **({"attempts": attempt} if attempt > 1 else {})}
        store.update_op(
            run_id,
            record.seq,
            {"rollback_status": "completed", "rollback_error": None, "status": "rolled_back"},
            execution.take_events((now, EventType.STEP_ROLLED_BACK, record.tag, data)),
        )
        record.rollback_status, record.rollback_error, record.status = (
            "completed",
            None,
            StepStatus.ROLLED_BACK,
        )
        execution.notify(EventType.STEP_ROLLED_BACK, tag=record.tag)
        return None


def _record_failure(execution: Execution, record: StepRecord, message: str, attempts: int) -> None:
    now = execution.clock.now()
    data: dict[str, Any] = {"error": message, **({"attempts": attempts} if attempts else {})}
    execution.store.update_op(
        execution.run.id,
        record.seq,
        {"rollback_status": "failed", "rollback_error": message},
        execution.take_events((now, EventType.STEP_ROLLBACK_FAILED, record.tag, data)),
    )
    record.rollback_status, record.rollback_error = "failed", message
    execution.notify(EventType.STEP_ROLLBACK_FAILED, tag=record.tag, error=message)
