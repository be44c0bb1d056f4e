"""Rollback: choose the completed steps the strategy names, and undo them newest first.

Each handler's outcome is journaled on its step row as it finishes, so a
rollback interrupted by a crash resumes with the ones not yet done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ductape_cli.engine.journal import Journal
from ductape_cli.engine.steps import IN_STEP, StepOptions, call_function
from ductape_cli.models import (
    EventType,
    Lifecycle,
    OpKind,
    RollbackStrategy,
    StepRecord,
    StepStatus,
)


class Rollback:
    """Runs compensations: `ctx.trigger_rollback`, and the rollback a failed run applies."""

    def __init__(
        self,
        journal: Journal,
        strategy: RollbackStrategy,
        handlers: dict[int, tuple[Callable[..., Any], StepOptions]],
    ) -> None:
        self.journal = journal
        self.clock = journal.clock
        self.store = journal.store
        self.run_id = journal.run.id
        self.strategy = strategy
        self.handlers = handlers  # the step runner's: registered as each step completes or replays
        # What the handler's own `ctx.trigger_rollback` calls compensated so far (None: none yet).
        self.manual: dict[str, Any] | None = None

    async def trigger(self, reason: str, site: tuple[str, int]) -> dict[str, Any]:
        """`ctx.trigger_rollback`: undo the completed steps now; the run goes on."""
        seq, record = self.journal.next_op(OpKind.ROLLBACK, "rollback", site)
        if record is not None and record.status == StepStatus.COMPLETED:
            self.manual = union_rollbacks(record.output, self.manual)
            return record.output
        now = self.clock.now()
        if record is None:
            record = StepRecord(
                self.run_id,
                seq,
                OpKind.ROLLBACK,
                "rollback",
                StepStatus.RUNNING,
                input=reason,
                started_at=now,
            )
            self.journal.commit(
                record,
                self.journal.take_events(
                    (now, EventType.ROLLBACK_STARTED, None, {"reason": reason, "manual": True})
                ),
            )
        result = await self.apply(self.select(manual=True), reason)
        self.store.update_op(
            self.run_id,
            seq,
            {"status": "completed", "output": result, "ended_at": self.clock.now()},
        )
        self.manual = union_rollbacks(result, self.manual)
        return result

    def select(self, *, manual: bool = False) -> list[StepRecord]:
        """Steps to roll back under the workflow's strategy, newest first.

        `none` disables automatic rollback only: a manual `trigger_rollback` under it
        undoes every completed step, as the seed's example expects.
        """
        strategy = self.strategy
        if strategy == RollbackStrategy.NONE:
            if not manual:
                return []
            strategy = RollbackStrategy.REVERSE_ALL
        records = sorted(self.journal.records.values(), key=lambda r: r.seq, reverse=True)
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
                and self._done_earlier(record)
            ):
                continue
            chosen.append(record)
        return chosen

    def _done_earlier(self, record: StepRecord) -> bool:
        """A step undone by an earlier manual trigger_rollback is not undone (or reported) again."""
        manual = self.manual or {}
        return record.tag in manual.get("rolled_back_steps", [])

    async def apply(self, records: list[StepRecord], reason: str) -> dict[str, Any]:
        """Run each rollback handler until it succeeds or its retries are spent; failures are
        recorded and the rest still run. Steps already compensated are reported, never re-run."""
        rolled_back: list[str] = []
        failed: list[dict[str, str]] = []
        for record in records:
            if record.rollback_status == "completed":
                rolled_back.append(record.tag)
                continue
            if record.rollback_status == "failed":
                failed.append(
                    {"tag": record.tag, "error": record.rollback_error or "rollback failed"}
                )
                continue
            error = await self._compensate(record, reason)
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

    async def _compensate(self, record: StepRecord, reason: str) -> str | None:
        """One step's compensation with its retries, each failed attempt journaled. The error, or None."""
        journal = self.journal
        registered = self.handlers.get(record.seq)
        if registered is None:
            message = "rollback handler not registered on replay (did the code change?)"
            self._record_failure(record, message, 0)
            return message
        handler, options = registered
        journal.notify(Lifecycle.STEP_ROLLBACK_STARTED, tag=record.tag)
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
                    now = self.clock.now()
                    self.store.append_events(
                        self.run_id,
                        journal.take_events(
                            (
                                now,
                                EventType.STEP_ROLLBACK_RETRIED,
                                record.tag,
                                {"attempt": attempt, "error": message, "delay_ms": delay},
                            )
                        ),
                    )
                    await self.clock.sleep(delay / 1000)
                    continue
                self._record_failure(record, message, attempt)
                return message
            finally:
                IN_STEP.reset(token)
            now = self.clock.now()
            data: dict[str, Any] = {
                "reason": reason,
                **({"attempts": attempt} if attempt > 1 else {}),
            }
            self.store.update_op(
                self.run_id,
                record.seq,
                {"rollback_status": "completed", "rollback_error": None, "status": "rolled_back"},
                journal.take_events((now, EventType.STEP_ROLLED_BACK, record.tag, data)),
            )
            record.rollback_status, record.rollback_error, record.status = (
                "completed",
                None,
                StepStatus.ROLLED_BACK,
            )
            journal.notify(EventType.STEP_ROLLED_BACK, tag=record.tag)
            return None

    def _record_failure(self, record: StepRecord, message: str, attempts: int) -> None:
        now = self.clock.now()
        data: dict[str, Any] = {"error": message, **({"attempts": attempts} if attempts else {})}
        self.store.update_op(
            self.run_id,
            record.seq,
            {"rollback_status": "failed", "rollback_error": message},
            self.journal.take_events((now, EventType.STEP_ROLLBACK_FAILED, record.tag, data)),
        )
        record.rollback_status, record.rollback_error = "failed", message
        self.journal.notify(EventType.STEP_ROLLBACK_FAILED, tag=record.tag, error=message)


def summary(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """A rollback's outcome as a run stores it: which steps were undone and which failed."""
    if not result:
        return None
    return {
        "rolled_back_steps": list(result.get("rolled_back_steps", [])),
        "failed_steps": list(result.get("failed_steps", [])),
    }


def union_rollbacks(newer: dict[str, Any] | None, older: dict[str, Any] | None) -> dict[str, Any]:
    """Everything compensated over several rollbacks of one run: newest first, each step once.

    A step whose compensation failed in one pass and succeeded in a later one counts as rolled back."""
    newer, older = newer or {}, older or {}
    rolled_back = list(
        dict.fromkeys([*newer.get("rolled_back_steps", []), *older.get("rolled_back_steps", [])])
    )
    failed: list[dict[str, Any]] = []
    for entry in [*newer.get("failed_steps", []), *older.get("failed_steps", [])]:
        if entry["tag"] not in rolled_back and entry["tag"] not in {f["tag"] for f in failed}:
            failed.append(entry)
    return {
        **older,
        **newer,
        "rolled_back_steps": rolled_back,
        "failed_steps": failed,
        "success": not failed,
    }
