"""One execution of a run: re-run the handler, replaying the journal, until it ends or waits.

Every durable operation takes the next journal position. If the journal has
a row there, the operation returns what it recorded (and must be the same
kind and tag, or replay diverged); otherwise it runs and is recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ductape_cli import logs
from ductape_cli.components.errors import ComponentError
from ductape_cli.ctx import checkpoint_name_problem
from ductape_cli.engine import rollback as rollback_module
from ductape_cli.engine.children import ChildrenMixin, apply_close_policies
from ductape_cli.engine.context import Context, StepCall
from ductape_cli.engine.fencing import LostOwnership
from ductape_cli.engine.journal import Suspend
from ductape_cli.engine.steps import StepsMixin, in_thread
from ductape_cli.engine.waits import WaitsMixin
from ductape_cli.errors import (
    Cancelled,
    ChildWorkflowFailed,
    CircuitBroken,
    NonDeterminismError,
    SignalTimeout,
    StepError,
    StepFailed,
    StoreError,
    WorkflowInterrupt,
    WorkflowTimedOut,
)
from ductape_cli.models import (
    ErrorCode,
    EventType,
    Lifecycle,
    OpKind,
    RunError,
    RunStatus,
    StepRecord,
    StepStatus,
)
from ductape_cli.store import dumps
from ductape_cli.store.encoding import plain

if TYPE_CHECKING:
    pass

log = logging.getLogger("ductape.executor")


@dataclass
class Outcome:
    status: RunStatus
    output: Any = None
    error: dict[str, Any] | None = None
    failed_step: str | None = None
    rollback_result: dict[str, Any] | None = None
    ready_at: float | None = None
    waiting: dict[str, Any] | None = None
    lost: bool = False

    @property
    def suspended(self) -> bool:
        return self.status in (RunStatus.RUNNING, RunStatus.PENDING) and not self.lost


class Execution(StepsMixin, WaitsMixin, ChildrenMixin):
    """One execution of a run: the journal core (`engine/journal.py`) with steps, waits and children.

    What is left here is the run itself: calling the handler, and ending it (finish, fail with
    rollback, suspend).
    """

    def log(self, level: str, message: str, data: dict[str, Any]) -> None:
        if self.replaying():
            return
        payload = {"level": level, "message": message}
        if data:
            payload["data"] = plain(data)
        self.pending_events.append((self.clock.now(), EventType.LOG, self.current_step, payload))
        self.notify(EventType.LOG, level=level, message=message, data=data)

    def emit_custom(self, type_: str, payload: Any) -> None:
        if self.replaying():
            return
        data = {"event": str(type_), "payload": plain(payload)}
        self.pending_events.append((self.clock.now(), EventType.CUSTOM, self.current_step, data))

    def journaled_value(self, name: str, produce: Callable[[], Any]) -> Any:
        seq, record = self.next_op(OpKind.VALUE, name, ("<ctx.transform>", 0))
        if record is not None:
            return record.output
        value = produce()
        now = self.clock.now()
        self.commit(
            StepRecord(
                self.run.id,
                seq,
                OpKind.VALUE,
                name,
                StepStatus.COMPLETED,
                output=value,
                started_at=now,
                ended_at=now,
            ),
            self.take_events(),
        )
        return value

    def patched(self, change_id: str, site: tuple[str, int]) -> bool:
        record = self.journal.get(self.seq)
        if record is not None:
            if record.kind == OpKind.PATCH and record.tag == change_id:
                self.seq += 1
                return True
            return False  # the journal predates the change: keep the old path
        if self.seq <= self.max_seq:
            return False
        seq = self.seq
        self.seq += 1
        self.boundary()
        now = self.clock.now()
        self.commit(
            StepRecord(
                self.run.id,
                seq,
                OpKind.PATCH,
                change_id,
                StepStatus.COMPLETED,
                started_at=now,
                ended_at=now,
                source=f"{site[0]}:{site[1]}",
            ),
            self.take_events((now, EventType.PATCH_APPLIED, None, {"change_id": change_id})),
        )
        return True

    async def record_checkpoint(self, name: str, data: Any, site: tuple[str, int]) -> None:
        if (problem := checkpoint_name_problem(name)) is not None:
            raise StepError(problem)
        seq, record = self.next_op(OpKind.CHECKPOINT, name, site)
        if record is None:
            try:
                text = dumps(data)
            except (TypeError, ValueError):
                raise StepError(
                    f"checkpoint {name!r} data must be JSON-serialisable, got {type(data).__name__}"
                ) from None
            now = self.clock.now()
            record = StepRecord(
                self.run.id,
                seq,
                OpKind.CHECKPOINT,
                name,
                StepStatus.COMPLETED,
                output=json.loads(text),
                started_at=now,
                ended_at=now,
                source=f"{site[0]}:{site[1]}",
            )
            self.commit(
                record,
                self.take_events(
                    (now, EventType.CHECKPOINT_CREATED, None, {"name": name, "data": record.output})
                ),
            )
            self.notify(EventType.CHECKPOINT_CREATED, name=name)
        self.checkpoint = (name, record.output, seq)

    async def trigger_rollback(self, reason: str, site: tuple[str, int]) -> dict[str, Any]:
        seq, record = self.next_op(OpKind.ROLLBACK, "rollback", site)
        if record is not None and record.status == StepStatus.COMPLETED:
            self.manual_rollback = union_rollbacks(record.output, self.manual_rollback)
            return record.output
        now = self.clock.now()
        if record is None:
            record = StepRecord(
                self.run.id,
                seq,
                OpKind.ROLLBACK,
                "rollback",
                StepStatus.RUNNING,
                input=reason,
                started_at=now,
            )
            self.commit(
                record,
                self.take_events(
                    (now, EventType.ROLLBACK_STARTED, None, {"reason": reason, "manual": True})
                ),
            )
        result = await rollback_module.apply(
            self, rollback_module.select(self, manual=True), reason
        )
        self.store.update_op(
            self.run.id,
            seq,
            {"status": "completed", "output": result, "ended_at": self.clock.now()},
        )
        self.manual_rollback = union_rollbacks(result, self.manual_rollback)
        return result

    def components(self) -> Any:
        if self._components is None:
            self._components = self.engine.components_for(self)
        return self._components

    def component(self, kind: str) -> Any:
        return getattr(self.components(), kind)

    # -- the run ------------------------------------------------------------------

    async def execute(self) -> Outcome:
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        marked = logs.CURRENT.set(
            self
        )  # log records made from here on carry this run's id and step
        ctx = Context(self)
        self.engine.leases.add(self)
        outcome: Outcome | None = None
        self.notify(Lifecycle.EXECUTION_STARTED, first=not self.journal and self.run.phase is None)
        try:
            if self.run.phase == "rolling_back":
                outcome = await self._finish_interrupted_rollback(ctx)
            else:
                outcome = await self._execute(ctx)
            return outcome
        except LostOwnership:
            outcome = Outcome(
                RunStatus.RUNNING, lost=True
            )  # a write during rollback or suspension was refused
            return outcome
        finally:
            self.engine.leases.remove(self)
            self.notify(Lifecycle.EXECUTION_ENDED, outcome=outcome)
            logs.CURRENT.reset(marked)

    async def _execute(self, ctx: Context) -> Outcome:
        try:
            output = await self._call_handler(ctx)
        except Suspend as suspend:
            return self._suspend(suspend)
        except LostOwnership:
            return Outcome(RunStatus.RUNNING, lost=True)
        except Cancelled as cancel:
            return await self._fail(
                RunError(f"cancelled: {cancel.reason}", ErrorCode.CANCELLED, self.current_step),
                None,
                cancelled=True,
            )
        except WorkflowTimedOut:
            limit = self.run.options.get("timeout_ms")
            step = self.current_step
            return await self._fail(
                RunError(f"workflow timed out after {limit} ms", ErrorCode.TIMEOUT, step), step
            )
        except CircuitBroken:
            step = self.current_step
            message = f"circuit breaker: more than {self.max_events} events (max_events)"
            return await self._fail(RunError(message, ErrorCode.MAX_EVENTS_EXCEEDED, step), step)
        except NonDeterminismError as exc:
            # The journal no longer matches the code: never roll back or continue on a guess.
            return self.finish(RunStatus.FAILED, error=RunError(exc.message, exc.code))
        except StepFailed as exc:
            return await self._fail(RunError(exc.message, exc.code, exc.step), exc.step)
        except StepError as exc:
            step = self.current_step
            return await self._fail(RunError(exc.message, exc.code, step), step)
        except SignalTimeout as exc:
            return await self._fail(RunError(str(exc), ErrorCode.SIGNAL_TIMEOUT), None)
        except StoreError:
            raise  # the store itself failed: recording a failure would fail the same way
        except ChildWorkflowFailed as exc:
            code = exc.error.get("code") or ErrorCode.CHILD_FAILED
            return await self._fail(RunError(str(exc), code, exc.child_id), exc.child_id)
        except Exception as exc:  # noqa: BLE001 - the handler's own error fails the run
            # A component call that failed (e.g. a replayed download whose file changed) is a fact about
            # the world, not a change of code: only other errors before journaled positions are divergence.
            if not isinstance(exc, ComponentError) and (missing := self.unreached()) is not None:
                return self._diverged(missing, f"raises {type(exc).__name__}")
            message = str(exc) or type(exc).__name__
            return await self._fail(
                RunError(f"{type(exc).__name__}: {message}", ErrorCode.HANDLER_ERROR), None
            )
        forgotten = ctx.never_awaited()
        if forgotten:
            # A step without `await` never ran: completing would silently skip it (a payment, say).
            call = forgotten[0]
            where = f"{call.site[0]}:{call.site[1]}"
            message = f"step {call.tag!r} was never awaited ({where}), so it never ran: write `await ctx.step(...)`"
            return await self._fail(
                RunError(message, ErrorCode.STEP_NOT_AWAITED, call.tag), call.tag
            )
        if (missing := self.unreached()) is not None:
            return self._diverged(missing, "returns")
        try:
            dumps(output)
        except (TypeError, ValueError):
            message = (
                f"the handler returned a {type(output).__name__}, which is not JSON-serialisable"
            )
            return await self._fail(RunError(message, ErrorCode.OUTPUT_NOT_JSON), None)
        status = RunStatus.ROLLED_BACK if self.manual_rollback else RunStatus.COMPLETED
        return self.finish(
            status, output=output, rollback_result=_rollback_summary(self.manual_rollback)
        )

    def unreached(self) -> StepRecord | None:
        """The first journaled operation the handler ended without reaching, or None.

        One rule for the engine and the testing kit's `replay_history`: code that now ends
        before operations its journal holds has diverged from what happened."""
        later = [seq for seq in self.journal if seq >= self.seq]
        return self.journal[min(later)] if later else None

    def _diverged(self, record: StepRecord, how: str) -> Outcome:
        message = (
            f"run {self.run.id}: replay diverged: the code now {how} before position {record.seq}, where the journal "
            f"holds {record.kind} {record.tag!r} ({record.source or 'unknown site'}). Revert the change, guard it with "
            "ctx.patched(...), or start a new run (ductape replay / restart)"
        )
        return self.finish(RunStatus.FAILED, error=RunError(message, NonDeterminismError.code))

    async def _call_handler(self, ctx: Context) -> Any:
        handler = self.definition.handler
        if self.definition.is_async:
            task: asyncio.Future[Any] = asyncio.ensure_future(handler(ctx))
        else:
            task = self._run_sync_handler(handler, ctx)
        timer = None
        if self.deadline is not None:
            remaining = max(0.0, self.deadline - self.clock.now())
            timer = self.clock.call_later(
                asyncio.get_running_loop(), remaining, self._deadline_passed, task
            )
        try:
            result = await task
            if asyncio.iscoroutine(result):
                result = await result
            return result
        except asyncio.CancelledError:
            if self.deadline is not None and self.clock.now() >= self.deadline:
                raise WorkflowTimedOut() from None
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _deadline_passed(self, task: asyncio.Future[Any]) -> None:
        if not task.done() and self.definition.is_async:
            task.cancel()

    def _run_sync_handler(self, handler: Callable[..., Any], ctx: Context) -> asyncio.Future[Any]:
        """Run a plain `def` handler in a daemon thread; its ctx calls block on this loop."""
        return in_thread(handler, (ctx,))

    async def _finish_interrupted_rollback(self, ctx: Context) -> Outcome:
        """A process died mid-rollback: replay only to re-register handlers, then finish the rest."""
        self.frontier_mode = True
        try:
            await self._call_handler(ctx)
        except WorkflowInterrupt:
            pass  # the frontier: every rollback handler the journal knows is registered again
        except Exception:  # noqa: BLE001 - we only needed the rollback handlers
            log.debug(
                "run %s: the handler raised while re-registering rollback handlers",
                self.run.id,
                exc_info=True,
            )
        self.frontier_mode = False
        run = self.run
        error = (
            RunError.from_dict(run.error)
            if run.error
            else RunError("rollback interrupted", "ERROR")
        )
        return await self._fail(
            error, run.failed_step, cancelled=run.cancel_requested is not None, resumed=True
        )

    async def _fail(
        self,
        error: RunError,
        failed_step: str | None,
        *,
        cancelled: bool = False,
        resumed: bool = False,
    ) -> Outcome:
        """Apply the rollback strategy, then record the final status."""
        candidates = rollback_module.select(self)
        result = None
        if candidates or resumed:
            if not resumed:
                now = self.clock.now()
                events = self.take_events(
                    (
                        now,
                        EventType.ROLLBACK_STARTED,
                        None,
                        {
                            "reason": error.message,
                            "strategy": str(self.definition.rollback_strategy),
                            "steps": [c.tag for c in candidates],
                        },
                    )
                )
                self.store.set_run_fields(
                    self.run.id,
                    {"phase": "rolling_back", "error": error.to_dict(), "failed_step": failed_step},
                    events,
                )
            result = await rollback_module.apply(self, candidates, error.message or "failure")
        if self.manual_rollback:
            result = union_rollbacks(result, self.manual_rollback)
        summary = _rollback_summary(result)
        if cancelled:
            status = RunStatus.CANCELLED
        elif summary and summary["rolled_back_steps"] and not summary["failed_steps"]:
            status = RunStatus.ROLLED_BACK
        else:
            status = RunStatus.FAILED
        return self.finish(status, error=error, failed_step=failed_step, rollback_result=summary)

    def finish(
        self,
        status: RunStatus,
        *,
        output: Any = None,
        error: RunError | None = None,
        failed_step: str | None = None,
        rollback_result: dict[str, Any] | None = None,
    ) -> Outcome:
        """Record the run's end (status, output or error, events) under this execution's lease."""
        now = self.clock.now()
        stored_error = error.to_dict() if error is not None else None
        event_type = {
            RunStatus.COMPLETED: EventType.WORKFLOW_COMPLETED,
            RunStatus.FAILED: EventType.WORKFLOW_FAILED,
            RunStatus.ROLLED_BACK: EventType.WORKFLOW_ROLLED_BACK,
            RunStatus.CANCELLED: EventType.WORKFLOW_CANCELLED,
        }[status]
        data: dict[str, Any] = {}
        if stored_error:
            data["error"] = stored_error
        if rollback_result:
            data["rollback_result"] = rollback_result
        extra: dict[str, Any] = {}
        if self.run.lineage.get("restored_checkpoint"):
            self.run.lineage.pop("restored_checkpoint")  # it described this resume only
            extra["lineage"] = dumps(self.run.lineage)
        fields = {
            "status": str(status),
            "output": output,
            "error": stored_error,
            "failed_step": failed_step,
            "rollback_result": rollback_result,
            "state": self.state or None,
            "ended_at": now,
            "owner": None,
            "lease_expires_at": None,
            "ready_at": None,
            "waiting": None,
            "current_step": None,
            "phase": None,
            **extra,
        }
        if not self.store.finish_run(
            self.run.id, self.lease or "", fields, self.take_events((now, event_type, None, data))
        ):
            return Outcome(RunStatus.RUNNING, lost=True)
        self.run.status, self.run.output, self.run.error = status, output, stored_error
        self.run.failed_step, self.run.rollback_result, self.run.ended_at = (
            failed_step,
            rollback_result,
            now,
        )
        if self.run.parent_id:
            self.store.wake_parent(self.run.parent_id, now)
        if any(r.kind == OpKind.CHILD for r in self.journal.values()):
            apply_close_policies(self.engine, self.run.id)
        self.notify(Lifecycle.FINISHED, status=str(status), error=stored_error)
        return Outcome(
            status,
            output=output,
            error=stored_error,
            failed_step=failed_step,
            rollback_result=rollback_result,
        )

    def _suspend(self, suspend: Suspend) -> Outcome:
        ready_at = suspend.ready_at
        if self.deadline is not None:
            ready_at = self.deadline if ready_at is None else min(ready_at, self.deadline)
        ready_at = self.store.suspend_run(
            self.run.id,
            self.lease or "",
            suspend.waiting,
            ready_at,
            self.state or None,
            self.clock.now(),
            self.take_events(),
        )
        self.run.waiting, self.run.ready_at = suspend.waiting, ready_at
        self.notify(Lifecycle.WAITING, waiting=suspend.waiting)
        return Outcome(RunStatus.RUNNING, ready_at=ready_at, waiting=suspend.waiting)

    def cancel_unstarted(self) -> Outcome:
        """A run cancelled before it ever ran: end it cancelled without calling the handler."""
        try:
            return self.finish(
                RunStatus.CANCELLED,
                error=RunError(f"cancelled: {self.cancel_reason}", ErrorCode.CANCELLED),
            )
        except LostOwnership:
            return Outcome(RunStatus.RUNNING, lost=True)

    def step_call(
        self,
        tag: str,
        fn: Callable[..., Any],
        rollback: Callable[..., Any] | None,
        options: dict[str, Any],
    ) -> StepCall:
        return StepCall(self, tag, fn, rollback, options, ("<internal>", 0))


def _rollback_summary(result: dict[str, Any] | None) -> dict[str, Any] | None:
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
