"""The journal at the centre of an execution: positions, the replay check, commits under the lease.

`ExecutionCore` holds what every durable operation needs — the run, its
journal, the fenced store, the clock — and the few moves they all make: take
the next position (`next_op`, which checks a replay meets what the journal
holds there), check the boundary before anything new (lease, shutdown,
cancellation, deadline, event budget), and `commit` a record with its events
under this claim's lease token. The step, wait and child runners
(`steps.py`, `waits.py`, `children.py`) build on it, typed against it;
`execution.py` adds the handler call and the run's end.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ductape_cli.engine.fencing import FencedStore, LeaseClock, LostOwnership, renew_now
from ductape_cli.errors import (
    Cancelled,
    CircuitBroken,
    NonDeterminismError,
    StepTaken,
    WorkflowInterrupt,
    WorkflowTimedOut,
)
from ductape_cli.models import Observed, OpKind, Run, StepRecord, StepStatus

if TYPE_CHECKING:
    from ductape_cli.definition import WorkflowDefinition
    from ductape_cli.engine.engine import Engine
    from ductape_cli.engine.steps import StepOptions
    from ductape_cli.store import EventRow, SqliteStore

log = logging.getLogger("ductape.executor")


class Suspend(WorkflowInterrupt):
    """The handler reached a wait that is not satisfied: release the run until `ready_at`."""

    def __init__(self, ready_at: float | None, waiting: dict[str, Any]) -> None:
        super().__init__("suspended")
        self.ready_at = ready_at
        self.waiting = waiting


class Frontier(WorkflowInterrupt):
    """Replay reached the end of the journal while only re-registering rollbacks."""


# Observers and listeners hear one vocabulary: `EventType` where the moment is also stored, else `Lifecycle`.
Observer = Callable[[Observed, dict[str, Any]], None]
# An engine-wide listener hears every execution's events: (execution or None, kind, data).
Listener = Callable[["ExecutionCore | None", Observed, dict[str, Any]], None]


class ExecutionCore:
    """An execution's journal and the moves every durable operation makes on it."""

    def __init__(
        self,
        engine: Engine,
        run: Run,
        definition: WorkflowDefinition,
        *,
        inline_wait: float = 5.0,
        observer: Observer | None = None,
        journal: dict[int, StepRecord] | None = None,
    ) -> None:
        self.engine = engine
        # The store's interface, with this claim's lease on every write.
        self.store = cast("SqliteStore", FencedStore(engine.store, self))
        self.lease = run.lease
        self.lease_clock = LeaseClock(engine.lease_ttl)
        self.clock = engine.clock
        self.owner = engine.owner
        self.product = (
            definition.product or engine.config.name
        )  # define(product=...) wins over ductape.toml
        self.run = run
        self.definition = definition
        self.inline_wait = inline_wait
        self.observer = observer
        self.journal: dict[int, StepRecord] = (
            self.store.load_journal(run.id) if journal is None else journal
        )
        self.max_seq = max(self.journal, default=-1)
        self.seq = 0
        self.tags: set[str] = set()
        self.rollbacks: dict[int, tuple[Callable[..., Any], StepOptions]] = {}
        self.step_outputs: dict[str, Any] = {}
        self.completed_steps: list[str] = []
        self.current_step: str | None = None
        self.state: dict[str, Any] = {}
        self.state_dirty = False
        self.checkpoint: tuple[str, Any, int] | None = None
        self.restored: dict[str, Any] | None = (
            run.lineage.get("restored_checkpoint") if run.lineage else None
        )
        self.skip_steps: frozenset[str] = (
            frozenset(run.lineage.get("skip_steps", ())) if run.lineage else frozenset()
        )
        self.cancel_reason: str | None = run.cancel_requested
        self.deadline = run.deadline
        self.frontier_mode = False
        self.lost = False
        self.manual_rollback: dict[str, Any] | None = None
        self.pending_events: list[EventRow] = []
        self.outbox: dict[str, dict[str, Any]] = {}  # step tag -> message id -> OutboxMessage
        self.max_events = definition.max_events
        self.event_count = 0
        if self.max_events:  # events stored, plus the two history derives from each completed step
            done = sum(
                1
                for r in self.journal.values()
                if r.kind == OpKind.STEP
                and r.status in (StepStatus.COMPLETED, StepStatus.ROLLED_BACK)
            )
            self.event_count = self.store.count_events(run.id) + 2 * done
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_thread: int | None = None
        self._components: Any = None

    @property
    def run_id(self) -> str:
        return self.run.id

    # -- plumbing for ctx -------------------------------------------------------

    def deliver(self, awaitable: Any) -> Any:
        """Hand `awaitable` back in an async handler; block on it in a sync handler's thread."""
        if threading.get_ident() == self.loop_thread or self.loop is None:
            return awaitable
        return asyncio.run_coroutine_threadsafe(_await(awaitable), self.loop).result()

    def notify(self, kind: Observed, **data: Any) -> None:
        if self.observer is not None:
            self.observer(kind, data)
        if self.engine.listeners:
            self.engine.emit(self, kind, data)

    def take_events(self, *extra: EventRow) -> list[EventRow]:
        events = self.pending_events
        self.pending_events = []
        events.extend(extra)
        self.event_count += len(events)
        return events

    def replaying(self) -> bool:
        return self.seq <= self.max_seq

    def next_op(
        self, kind: OpKind, tag: str, site: tuple[str, int]
    ) -> tuple[int, StepRecord | None]:
        """Take the next journal position; check replay agrees with what the journal holds there."""
        seq = self.seq
        self.seq += 1
        record = self.journal.get(seq)
        if record is not None:
            if record.kind != kind or record.tag != tag:
                raise NonDeterminismError(
                    f"run {self.run.id}: replay diverged at position {seq} ({site[0]}:{site[1]}): "
                    f"the journal holds {record.kind} {record.tag!r} but the code now reaches {kind} {tag!r}. "
                    "Revert the change, guard it with ctx.patched(...), or start a new run "
                    "(ductape replay / restart)"
                )
            return seq, record
        self.boundary()
        return seq, None

    def boundary(self) -> None:
        """Checks made before any new durable operation."""
        if self.frontier_mode:
            raise Frontier()
        self.check_lease()
        if self.engine.shutting_down:
            now = self.clock.now()
            raise Suspend(
                now, {"kind": "released", "detail": "worker shut down; due again at once"}
            )
        if self.cancel_reason is not None:
            raise Cancelled(self.cancel_reason)
        if self.deadline is not None and self.clock.now() > self.deadline:
            raise WorkflowTimedOut()
        if self.max_events is not None and self.event_count > self.max_events:
            raise CircuitBroken()

    def check_lease(self) -> None:
        """Stop if the lease is gone; renew it first if this process may have been paused past it."""
        if self.lost:
            raise LostOwnership("lease lost")
        if self.lease is not None and self.lease_clock.expired():
            renew_now(self)

    def lose(self, reason: str) -> None:
        if not self.lost:
            log.warning("run %s: stopping, %s", self.run.id, reason)
        self.lost = True

    def commit(
        self, record: StepRecord, events: list[EventRow], output_json: str | None = None
    ) -> None:
        state = self.state if self.state_dirty else None
        # Messages a step queued for the outbox are stored with its completion, or dropped with its failure.
        queued = self.outbox.pop(record.tag, None) if self.outbox else None
        outbox = list(queued.values()) if queued and record.status == StepStatus.COMPLETED else ()
        try:
            self.store.commit_step(record, events, state, output_json=output_json, outbox=outbox)
        except StepTaken:  # another owner recorded this position first
            self.lose(f"position {record.seq} was recorded by another owner")
            raise LostOwnership("position taken") from None
        self.state_dirty = False
        self.journal[record.seq] = record

    def check_waiting(self) -> None:
        """While a wait is pending: stop for rollback recovery, cancellation or the workflow deadline."""
        if self.frontier_mode:
            raise Frontier()
        if self.cancel_reason is not None:
            raise Cancelled(self.cancel_reason)
        if self.deadline is not None and self.clock.now() > self.deadline:
            raise WorkflowTimedOut()


async def _await(awaitable: Any) -> Any:
    return await awaitable
