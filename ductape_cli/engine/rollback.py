"""Rollback: choose the completed steps the strategy names, and undo them newest first.

Each handler's outcome is journaled on its step row as it finishes, so a
rollback interrupted by a crash resumes with the ones not yet done.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from ductape_cli.engine.steps import IN_STEP
from ductape_cli.models import EventType, OpKind, RollbackStrategy, StepRecord, StepStatus

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
        if record.rollback_status == "completed" and record.status == StepStatus.ROLLED_BACK and _done_earlier(execution, record):
            continue
        chosen.append(record)
    return chosen


def _done_earlier(execution: Execution, record: StepRecord) -> bool:
    """A step undone by an earlier manual trigger_rollback is not undone (or reported) again."""
    manual = execution.manual_rollback or {}
    return record.tag in manual.get("rolled_back_steps", [])


async def apply(execution: Execution, records: list[StepRecord], reason: str) -> dict[str, Any]:
    """Run each rollback handler once; failures are recorded and the rest still run."""
    rolled_back: list[str] = []
    failed: list[dict[str, str]] = []
    store, run_id = execution.store, execution.run.id
    for record in records:
        if record.rollback_status == "completed":
            rolled_back.append(record.tag)
            continue
        if record.rollback_status == "failed":
            failed.append({"tag": record.tag, "error": record.rollback_error or "rollback failed"})
            continue
        handler = execution.rollbacks.get(record.seq)
        now = execution.clock.now()
        if handler is None:
            message = "rollback handler not registered on replay (did the code change?)"
            store.update_op(run_id, record.seq, {"rollback_status": "failed", "rollback_error": message},
                            execution.take_events((now, EventType.STEP_ROLLBACK_FAILED, record.tag, {"error": message})))  # fmt: skip
            record.rollback_status, record.rollback_error = "failed", message
            failed.append({"tag": record.tag, "error": message})
            continue
        execution.notify("rollback_started", tag=record.tag)
        token = IN_STEP.set(record.tag)
        try:
            result = handler(record.output)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # noqa: BLE001 - one failing compensation must not stop the others
            message = str(exc) or type(exc).__name__
            now = execution.clock.now()
            store.update_op(run_id, record.seq, {"rollback_status": "failed", "rollback_error": message},
                            execution.take_events((now, EventType.STEP_ROLLBACK_FAILED, record.tag, {"error": message})))  # fmt: skip
            record.rollback_status, record.rollback_error = "failed", message
            failed.append({"tag": record.tag, "error": message})
            execution.notify("rollback_failed", tag=record.tag, error=message)
            continue
        finally:
            IN_STEP.reset(token)
        now = execution.clock.now()
        store.update_op(run_id, record.seq, {"rollback_status": "completed", "status": "rolled_back"},
                        execution.take_events((now, EventType.STEP_ROLLED_BACK, record.tag, {"reason": reason})))  # fmt: skip
        record.rollback_status, record.status = "completed", StepStatus.ROLLED_BACK
        rolled_back.append(record.tag)
        execution.notify("rolled_back", tag=record.tag)
    return {"success": not failed, "rolled_back_steps": rolled_back, "failed_steps": failed, "reason": reason}
