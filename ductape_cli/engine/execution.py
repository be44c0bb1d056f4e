"""One execution of a run: re-run the handler, replaying the journal, until it ends or waits.

Every durable operation takes the next journal position. If the journal has
a row there, the operation returns what it recorded (and must be the same
kind and tag, or replay diverged); otherwise it runs and is recorded. The
`Journal` does the positioning and the fenced commits; the runners it is
handed to (steps, waits, children, rollback, marks) do the operations.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ductape_cli import logs
from ductape_cli.components.errors import ComponentError
from ductape_cli.engine import rollback
from ductape_cli.engine.children import ChildRunner, apply_close_policies
from ductape_cli.engine.context import Context, StepCall
from ductape_cli.engine.fencing import LostOwnership
from ductape_cli.engine.journal import Journal, Observer, Suspend
from ductape_cli.engine.marks import Marks
from ductape_cli.engine.rollback import Rollback, union_rollbacks
from ductape_cli.engine.steps import StepRunner, in_thread
from ductape_cli.engine.waits import WaitRunner
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
    Run,
    RunError,
    RunStatus,
    StepRecord,
)
from ductape_cli.store import dumps

if TYPE_CHECKING:
    from ductape_cli.definition import WorkflowDefinition
    from ductape_cli.engine.engine import Engine

log = logging.getLogger("ductape.executor")

_INTERNAL = ("<internal>", 0)  # the site of a step ductape makes (a component call's)


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


class Execution:
    """One execution of a run: a `Journal` with the runners composed around it.

    What is left here is the run itself: calling the handler, and ending it (finish, fail with
    rollback, suspend). The handler's ctx calls the runners; components and observers read the
    run through `view`.
    """

    # The journal and runners this execution composes. The testing kit's `replay_history`
    # (`testing/replayer.py`) names read-only ones in a subclass; nothing else is swapped.
    journal_type: type[Journal] = Journal
    child_runner: type[ChildRunner] = ChildRunner
    rollback_runner: type[Rollback] = Rollback

    def __init__(
        self,
        engine: Engine,
        run: Run,
        definition: WorkflowDefinition,
        *,
        inline_wait: float = 5.0,
        observer: Observer | None = None,
        records: dict[int, StepRecord] | None = None,
    ) -> None:
        self.engine = engine
        self.definition = definition
        # define(product=...) wins over ductape.toml
        self.product = definition.product or engine.config.name
        self.journal = journal = self.journal_type(
            engine, run, definition, observer=observer, records=records
        )
        self.view = journal.view
        self.steps = StepRunner(journal, engine.step_function)
        self.waits = WaitRunner(journal, definition.signals or (), inline_wait, self.deliver)
        self.children = self.child_runner(journal, engine, inline_wait)
        self.rollback = self.rollback_runner(
            journal, definition.rollback_strategy, self.steps.rollbacks
        )
        self.marks = Marks(journal)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_thread: int | None = None
        self._components: Any = None

    # -- what ctx and components call ---------------------------------------------------

    def deliver(self, awaitable: Any) -> Any:
        """Hand `awaitable` back in an async handler; block on it in a sync handler's thread."""
        if threading.get_ident() == self.loop_thread or self.loop is None:
            return awaitable
        return asyncio.run_coroutine_threadsafe(_await(awaitable), self.loop).result()

    def components(self) -> Any:
        if self._components is None:
            self._components = self.engine.components_for(self)
        return self._components

    def component(self, kind: str) -> Any:
        return getattr(self.components(), kind)

    def run_as_step(self, tag: str, fn: Callable[..., Any], input: Any) -> Any:
        """A component call made outside any step: run it as a step of its own (awaitable)."""
        return self.steps.run(StepCall(self.steps, tag, fn, None, {"input": input}, _INTERNAL))

    def queue_outbox(self, step: str, message_id: str, message: Any) -> None:
        """Hold a message for the outbox: stored with step `step`'s completion, dropped if it fails."""
        self.journal.outbox.setdefault(step, {})[message_id] = message

    # -- the run ------------------------------------------------------------------

    async def execute(self) -> Outcome:
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        journal = self.journal
        # Log records made from here on carry this run's id and step.
        marked = logs.CURRENT.set(journal)
        ctx = Context(self)
        self.engine.leases.add(journal)
        outcome: Outcome | None = None
        journal.notify(
            Lifecycle.EXECUTION_STARTED, first=not journal.records and journal.run.phase is None
        )
        try:
            if journal.run.phase == "rolling_back":
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
            self._write_deferred()
            self.engine.leases.remove(journal)
            journal.notify(Lifecycle.EXECUTION_ENDED, outcome=outcome)
            logs.CURRENT.reset(marked)

    def _write_deferred(self) -> None:
        """An execution that stopped without its end (lost, interrupted) still writes a step row
        it deferred: the step ran; the write is fenced, so a lost lease keeps it out."""
        try:
            self.journal.flush()
        except (LostOwnership, StoreError):
            log.debug("run %s: deferred step row not written", self.journal.run_id, exc_info=True)

    async def _execute(self, ctx: Context) -> Outcome:
        try:
            output = await self.call_handler(ctx)
        except Suspend as suspend:
            return self._suspend(suspend)
        except LostOwnership:
            return Outcome(RunStatus.RUNNING, lost=True)
        except Cancelled as cancel:
            return await self._fail(
                RunError(
                    f"cancelled: {cancel.reason}", ErrorCode.CANCELLED, self.journal.current_step
                ),
                None,
                cancelled=True,
            )
        except WorkflowTimedOut:
            limit = self.journal.run.options.get("timeout_ms")
            step = self.journal.current_step
            return await self._fail(
                RunError(f"workflow timed out after {limit} ms", ErrorCode.TIMEOUT, step), step
            )
        except CircuitBroken:
            step = self.journal.current_step
            message = f"circuit breaker: more than {self.journal.max_events} events (max_events)"
            return await self._fail(RunError(message, ErrorCode.MAX_EVENTS_EXCEEDED, step), step)
        except NonDeterminismError as exc:
            # The journal no longer matches the code: never roll back or continue on a guess.
            return self.finish(RunStatus.FAILED, error=RunError(exc.message, exc.code))
        except StepFailed as exc:
            return await self._fail(RunError(exc.message, exc.code, exc.step), exc.step)
        except StepError as exc:
            step = self.journal.current_step
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
            if (
                not isinstance(exc, ComponentError)
                and (missing := self.journal.unreached()) is not None
            ):
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
        if (missing := self.journal.unreached()) is not None:
            return self._diverged(missing, "returns")
        try:
            dumps(output)
        except (TypeError, ValueError):
            message = (
                f"the handler returned a {type(output).__name__}, which is not JSON-serialisable"
            )
            return await self._fail(RunError(message, ErrorCode.OUTPUT_NOT_JSON), None)
        status = RunStatus.ROLLED_BACK if self.rollback.manual else RunStatus.COMPLETED
        return self.finish(
            status, output=output, rollback_result=rollback.summary(self.rollback.manual)
        )

    def _diverged(self, record: StepRecord, how: str) -> Outcome:
        message = (
            f"run {self.journal.run.id}: replay diverged: the code now {how} before position {record.seq}, where the journal "
            f"holds {record.kind} {record.tag!r} ({record.source or 'unknown site'}). Revert the change, guard it with "
            "ctx.patched(...), or start a new run (ductape replay / restart)"
        )
        return self.finish(RunStatus.FAILED, error=RunError(message, NonDeterminismError.code))

    async def call_handler(self, ctx: Context) -> Any:
        handler = self.definition.handler
        if self.definition.is_async:
            task: asyncio.Future[Any] = asyncio.ensure_future(handler(ctx))
        else:
            task = self._run_sync_handler(handler, ctx)
        timer = None
        if self.journal.deadline is not None:
            remaining = max(0.0, self.journal.deadline - self.journal.clock.now())
            timer = self.journal.clock.call_later(
                asyncio.get_running_loop(), remaining, self._deadline_passed, task
            )
        try:
            result = await task
            if asyncio.iscoroutine(result):
                result = await result
            return result
        except asyncio.CancelledError:
            if (
                self.journal.deadline is not None
                and self.journal.clock.now() >= self.journal.deadline
            ):
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
        self.journal.frontier_mode = True
        try:
            await self.call_handler(ctx)
        except WorkflowInterrupt:
            pass  # the frontier: every rollback handler the journal knows is registered again
        except Exception:  # noqa: BLE001 - we only needed the rollback handlers
            log.debug(
                "run %s: the handler raised while re-registering rollback handlers",
                self.journal.run.id,
                exc_info=True,
            )
        self.journal.frontier_mode = False
        run = self.journal.run
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
        candidates = self.rollback.select()
        result = None
        if candidates or resumed:
            if not resumed:
                now = self.journal.clock.now()
                events = self.journal.take_events(
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
                self.journal.store.set_run_fields(
                    self.journal.run.id,
                    {"phase": "rolling_back", "error": error.to_dict(), "failed_step": failed_step},
                    events,
                )
            result = await self.rollback.apply(candidates, error.message or "failure")
        if self.rollback.manual:
            result = union_rollbacks(result, self.rollback.manual)
        summary = rollback.summary(result)
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
        journal, run = self.journal, self.journal.run
        now = journal.clock.now()
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
        if run.lineage.get("restored_checkpoint"):
            run.lineage.pop("restored_checkpoint")  # it described this resume only
            extra["lineage"] = run.lineage  # the store encodes JSON columns
        fields = {
            "status": str(status),
            "output": output,
            "error": stored_error,
            "failed_step": failed_step,
            "rollback_result": rollback_result,
            "state": journal.state or None,
            "ended_at": now,
            "owner": None,
            "lease_expires_at": None,
            "ready_at": None,
            "waiting": None,
            "current_step": None,
            "phase": None,
            **extra,
        }
        journal.releasing = True
        if not journal.store.finish_run(
            journal.run.id,
            journal.lease or "",
            fields,
            journal.take_events((now, event_type, None, data)),
            step=journal.take_deferred(),
        ):
            return Outcome(RunStatus.RUNNING, lost=True)
        run.status, run.output, run.error = status, output, stored_error
        run.failed_step, run.rollback_result, run.ended_at = (
            failed_step,
            rollback_result,
            now,
        )
        if run.parent_id:
            journal.store.wake_parent(run.parent_id, now)
        if any(r.kind == OpKind.CHILD for r in journal.records.values()):
            apply_close_policies(self.engine, journal.run.id)
        journal.notify(Lifecycle.FINISHED, status=str(status), error=stored_error)
        return Outcome(
            status,
            output=output,
            error=stored_error,
            failed_step=failed_step,
            rollback_result=rollback_result,
        )

    def _suspend(self, suspend: Suspend) -> Outcome:
        journal, run = self.journal, self.journal.run
        ready_at = suspend.ready_at
        if journal.deadline is not None:
            ready_at = journal.deadline if ready_at is None else min(ready_at, journal.deadline)
        journal.releasing = True
        ready_at = journal.store.suspend_run(
            journal.run.id,
            journal.lease or "",
            suspend.waiting,
            ready_at,
            journal.state or None,
            journal.clock.now(),
            journal.take_events(),
        )
        run.waiting, run.ready_at = suspend.waiting, ready_at
        journal.notify(Lifecycle.WAITING, waiting=suspend.waiting)
        return Outcome(RunStatus.RUNNING, ready_at=ready_at, waiting=suspend.waiting)

    def cancelled_unstarted(self) -> bool:
        """Whether the run was cancelled before it ever ran (it has no journal yet)."""
        return self.journal.cancel_reason is not None and not self.journal.records

    def cancel_unstarted(self) -> Outcome:
        """A run cancelled before it ever ran: end it cancelled without calling the handler."""
        try:
            return self.finish(
                RunStatus.CANCELLED,
                error=RunError(f"cancelled: {self.journal.cancel_reason}", ErrorCode.CANCELLED),
            )
        except LostOwnership:
            return Outcome(RunStatus.RUNNING, lost=True)


async def _await(awaitable: Any) -> Any:
    return await awaitable
