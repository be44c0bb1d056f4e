"""The journal at the centre of an execution: positions, the replay check, commits under the lease.

`Journal` is the one object every durable operation goes through: it takes
the next position (`next_op`, which checks a replay meets what the journal
holds there), checks the boundary before anything new (lease, shutdown,
cancellation, deadline, event budget), and `commit`s a record with its
pending events under this claim's lease token. The runners (`steps.py`,
`waits.py`, `children.py`, `rollback.py`, `marks.py`) each receive it;
`execution.py` composes them and adds the handler call and the run's end.
Components and observers see a run through its `RunView`, never the journal.
"""

from __future__ import annotations

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
from ductape_cli.models import EventType, Observed, OpKind, Run, StepRecord, StepStatus
from ductape_cli.store.protocol import StepWrite

if TYPE_CHECKING:
    from ductape_cli.definition import WorkflowDefinition
    from ductape_cli.engine.clock import Clock
    from ductape_cli.engine.engine import Engine
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
# An engine-wide listener hears every execution's events: (its run's view or None, kind, data).
Listener = Callable[["RunView | None", Observed, dict[str, Any]], None]


class Journal:
    """A run's journal and the moves every durable operation makes on it."""

    def __init__(
        self,
        engine: Engine,
        run: Run,
        definition: WorkflowDefinition,
        *,
        observer: Observer | None = None,
        records: dict[int, StepRecord] | None = None,
    ) -> None:
        self.engine = engine
        # The store's interface, with this claim's lease on every write.
        self.store = cast("SqliteStore", FencedStore(engine.store, self))
        self.lease = run.lease
        self.lease_clock = LeaseClock(engine.lease_ttl)
        self.clock = engine.clock
        self.run = run
        self.observer = observer
        self.records: dict[int, StepRecord] = (
            self.store.load_journal(run.id) if records is None else records
        )
        self.max_seq = max(self.records, default=-1)
        self.seq = 0
        self.current_step: str | None = None  # the step in flight: logs, `status`, a run's error
        self.state: dict[str, Any] = {}
        self.state_dirty = False
        self.cancel_reason: str | None = run.cancel_requested
        self.deadline = run.deadline
        self.frontier_mode = False
        self.lost = False
        # Set just before this execution's own finish or suspend gives the lease up, so a renewal
        # racing that write is not taken for another owner's takeover (the write itself is fenced).
        self.releasing = False
        # A completed step's row waits here for two turns of the event loop: a run that ends
        # right after it records it with its end (one commit, not two); anything else the run
        # does next writes it first (`flush`), and the loop writes it two turns later at the
        # latest. `deferred_on` is the loop's thread: only it touches the deferred row.
        self.deferred: StepWrite | None = None
        self.deferred_on: int | None = None
        self._deferred_error: BaseException | None = None
        self.pending_events: list[EventRow] = []
        self.outbox: dict[str, dict[str, Any]] = {}  # step tag -> message id -> OutboxMessage
        self.max_events = definition.max_events
        self.event_count = 0
        if self.max_events:  # events stored, plus the two history derives from each completed step
            done = sum(
                1
                for r in self.records.values()
                if r.kind == OpKind.STEP
                and r.status in (StepStatus.COMPLETED, StepStatus.ROLLED_BACK)
            )
            self.event_count = self.store.count_events(run.id) + 2 * done
        self.view = RunView(self)

    @property
    def run_id(self) -> str:
        return self.run.id

    @property
    def shutting_down(self) -> bool:
        return self.engine.shutting_down

    def notify(self, kind: Observed, **data: Any) -> None:
        if self.observer is not None:
            self.observer(kind, data)
        if self.engine.listeners:
            self.engine.emit(self.view, kind, data)

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
        record = self.records.get(seq)
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

    def patched(self, change_id: str, site: tuple[str, int]) -> bool:
        """`ctx.patched`: a marker position new runs record; a journal without one keeps the old path."""
        record = self.records.get(self.seq)
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

    def unreached(self) -> StepRecord | None:
        """The first journaled operation the handler ended without reaching, or None.

        One rule for the engine and the testing kit's `replay_history`: code that now ends
        before operations its journal holds has diverged from what happened."""
        later = [seq for seq in self.records if seq >= self.seq]
        return self.records[min(later)] if later else None

    def boundary(self) -> None:
        """Checks made before any new durable operation."""
        self.flush()
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
        self,
        record: StepRecord,
        events: list[EventRow],
        output_json: str | None = None,
        *,
        defer: bool = False,
    ) -> None:
        """Record `record` under the lease; with `defer`, at the latest two turns of the loop later."""
        self.flush()
        state = self.state if self.state_dirty else None
        # Messages a step queued for the outbox are stored with its completion, or dropped with its failure.
        queued = self.outbox.pop(record.tag, None) if self.outbox else None
        outbox = list(queued.values()) if queued and record.status == StepStatus.COMPLETED else ()
        write = StepWrite(record, events, state, output_json, outbox)
        if defer:
            self.deferred, self.deferred_on = write, threading.get_ident()
            self.state_dirty = False
            self.records[record.seq] = record
            import asyncio  # loaded by the executor already; not at the top, for the read commands

            # Two turns, not one: the handler is a task of its own, and its return reaches
            # `Execution` (which then ends the run with this row) one turn after it happens.
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._flush_later)
            return
        self._write(write)
        self.state_dirty = False
        self.records[record.seq] = record

    def _write(self, write: StepWrite) -> None:
        try:
            self.store.commit_step(
                write.record,
                write.events,
                write.state,
                output_json=write.output_json,
                outbox=write.outbox,
            )
        except StepTaken:  # another owner recorded this position first
            self.lose(f"position {write.record.seq} was recorded by another owner")
            raise LostOwnership("position taken") from None

    def flush(self) -> None:
        """Write the deferred step row now (on the loop's thread); raise what writing it raised."""
        if threading.get_ident() != self.deferred_on:
            return
        if self._deferred_error is not None:
            error, self._deferred_error = self._deferred_error, None
            raise error
        write, self.deferred = self.deferred, None
        if write is not None:
            self._write(write)

    def _flush_later(self) -> None:
        try:
            self.flush()
        except BaseException as exc:  # noqa: BLE001 - kept for the run's next operation or its end
            self._deferred_error = exc

    def take_deferred(self) -> StepWrite | None:
        """The deferred step row, for the write that ends the run to record with it."""
        if threading.get_ident() != self.deferred_on:
            return None
        if self._deferred_error is not None:
            error, self._deferred_error = self._deferred_error, None
            raise error
        write, self.deferred = self.deferred, None
        return write

    def check_waiting(self) -> None:
        """While a wait is pending: stop for rollback recovery, cancellation or the workflow deadline."""
        if self.frontier_mode:
            raise Frontier()
        if self.cancel_reason is not None:
            raise Cancelled(self.cancel_reason)
        if self.deadline is not None and self.clock.now() > self.deadline:
            raise WorkflowTimedOut()

    def step_record(self, tag: str) -> StepRecord | None:
        """The journal row of step `tag` (step tags are unique in a run), or None."""
        for record in self.records.values():
            if record.tag == tag and record.kind == OpKind.STEP:
                return record
        return None


class RunView:
    """What components and observers may read of a run in progress; nothing here changes it."""

    __slots__ = ("_journal",)

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    @property
    def run_id(self) -> str:
        return self._journal.run.id

    @property
    def tag(self) -> str:
        return self._journal.run.tag

    @property
    def env(self) -> str | None:
        return self._journal.run.env

    @property
    def parent_id(self) -> str | None:
        return self._journal.run.parent_id

    @property
    def taken_from(self) -> str | None:
        """The owner this process took the run over from (crash recovery), else None."""
        return self._journal.run.taken_from

    @property
    def trace_context(self) -> dict[str, str]:
        """The W3C trace headers the run was started with (`traceparent`, `tracestate`)."""
        options = self._journal.run.options or {}
        return {k: v for k, v in options.items() if k in ("traceparent", "tracestate")}

    @property
    def clock(self) -> Clock:
        return self._journal.clock

    @property
    def store(self) -> SqliteStore:
        """The store as this execution writes it (run writes carry its lease): for component
        bookkeeping such as quota counters and local broker logs."""
        return self._journal.store

    def step_record(self, tag: str) -> StepRecord | None:
        """The journal row of step `tag`, or None when it is not recorded."""
        return self._journal.step_record(tag)

    def recorded(self, tag: str) -> bool:
        """Whether step `tag` has a journal row (it completed, failed or was skipped)."""
        return self._journal.step_record(tag) is not None
