"""The store protocol: everything the engine, worker, components, CLI and testing kit may ask a store.

Two backends implement it, `SqliteStore` (one file, one machine) and
`PostgresStore` (one database, many hosts); `tests/store/` is its contract and
runs against both. Methods take and return the domain models of
`ductape_cli.models`; the only exceptions they raise are ductape's own
(`RunIdTaken`, `StepTaken`, `StoreUnavailable`, `StoreError`, ...): no driver
exception and no SQL leaves the store package. Public methods open their own
transaction. Times are epoch seconds passed in by the caller (`now`), never read here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ductape_cli.models import (
    Attempt,
    Definition,
    Event,
    FeedRow,
    Run,
    Schedule,
    Signal,
    StepRecord,
)
from ductape_cli.store.sqlite_outbox import OutboxMessage

EventRow = tuple[float, str, str | None, dict[str, Any] | None]  # (ts, type, step, data)


@dataclass(frozen=True)
class StepWrite:
    """A step's completion as `commit_step` takes it, for a write that carries it with another
    (`finish_run(step=...)`: a run that ends right after a step commits both at once)."""

    record: StepRecord
    events: Sequence[EventRow] = ()
    state: dict[str, Any] | None = None
    output_json: str | None = None
    outbox: Sequence[OutboxMessage] = ()


class Store(Protocol):
    """A ductape store. `backend` is "sqlite" or "postgresql"; `path` the file or URL it opened."""

    backend: str
    path: str
    namespace: str | None
    closed: bool

    # -- plumbing ----------------------------------------------------

    def close(self) -> None: ...
    def checkpoint(self) -> None: ...
    def schema_version(self) -> tuple[int, int]: ...
    def count_rows(self, table: str) -> int: ...
    def listen(self, wake: Callable[[], None]) -> Callable[[], None] | None: ...
    def next_claim_at(self) -> float | None: ...
    def enable_feed(self) -> None: ...
    def feed_position(self) -> int: ...
    def read_feed(
        self, after: int, *, run_id: str | None = None, tag: str | None = None, limit: int = 500
    ) -> list[FeedRow]: ...

    # -- definitions -------------------------------------------------

    def save_definition(
        self, tag: str, version: str, name: str, source_path: str, schema: dict[str, Any]
    ) -> bool: ...
    def latest_definition(self, tag: str) -> Definition | None: ...
    def get_definition(self, tag: str, version: str) -> Definition | None: ...
    def list_definitions(self, tag: str | None = None) -> list[Definition]: ...

    # -- runs --------------------------------------------------------

    def create_run(
        self, run: Run, events: Sequence[EventRow], journal: Sequence[StepRecord] = ()
    ) -> tuple[Run, bool]: ...
    def get_run(self, run_id: str) -> Run | None: ...
    def find_run_ids(self, fragment: str, limit: int = 5) -> list[str]: ...
    def list_runs(
        self,
        *,
        tag: str | None = None,
        status: str | None = None,
        parent_id: str | None = None,
        schedule_id: str | None = None,
        search: str | None = None,
        limit: int = 20,
        offset: int = 0,
        full: bool = True,
    ) -> list[Run]: ...
    def count_runs(
        self, *, tag: str | None = None, status: str | None = None, search: str | None = None
    ) -> int: ...
    def run_counts(self) -> dict[str, dict[str, int]]: ...
    def related_runs(self, run_id: str) -> list[Run]: ...
    def set_run_fields(
        self,
        run_id: str,
        fields: dict[str, Any],
        events: Sequence[EventRow] = (),
        *,
        lease: str | None = None,
    ) -> None: ...
    def set_metadata(self, run_id: str, metadata: dict[str, Any]) -> None: ...
    def request_cancel(self, run_id: str, reason: str, now: float) -> Run | None: ...
    def delete_run(self, run_id: str) -> None: ...
    def existing_run_ids(self, ids: Sequence[str]) -> set[str]: ...

    # -- leases and claims -------------------------------------------

    def claim_run(
        self, run_id: str, owner: str, now: float, ttl: float, dead_owners: Sequence[str] = ()
    ) -> Run | None: ...
    def claim_ready(
        self,
        owner: str,
        now: float,
        ttl: float,
        limit: int,
        tags: Sequence[str] | None = None,
        dead_owners: Sequence[str] = (),
        stale_leases: Sequence[str] | None = None,
    ) -> list[Run]: ...
    def claim_on_finish(
        self,
        run_id: str,
        owner: str,
        now: Callable[[], float],
        ttl: float,
        tags: Sequence[str] | None = None,
    ) -> None: ...
    def take_finish_claim(self) -> list[Run] | None: ...
    def expired_leases(self, now: float) -> list[tuple[str, str, float]]: ...
    def owners_on_host(self, host: str) -> list[str]: ...
    def next_ready_at(self) -> float | None: ...
    def renew_leases(self, leases: dict[str, str], now: float, ttl: float) -> set[str]: ...
    def set_current_steps(self, steps: dict[str, tuple[str | None, str]]) -> None: ...
    def cancel_requests(self, run_ids: Sequence[str]) -> dict[str, str]: ...
    def suspend_run(
        self,
        run_id: str,
        lease: str,
        waiting: dict[str, Any] | None,
        ready_at: float | None,
        state: dict[str, Any] | None,
        now: float,
        events: Sequence[EventRow],
    ) -> float | None: ...
    def finish_run(
        self,
        run_id: str,
        lease: str,
        fields: dict[str, Any],
        events: Sequence[EventRow],
        step: StepWrite | None = None,
    ) -> bool: ...
    def wake_parent(self, parent_id: str, now: float) -> None: ...
    def defer_unloadable(
        self,
        run_id: str,
        lease: str,
        message: str,
        now: float,
        retry_at: float | None,
        events: Sequence[EventRow],
    ) -> None: ...
    def release_run(self, run_id: str, lease: str) -> None: ...
    def rewind_run(
        self,
        run_id: str,
        seqs: Sequence[int],
        expect: tuple[str, str | None],
        fields: dict[str, Any],
        events: Sequence[EventRow],
        *,
        reset_rollbacks: Sequence[int] = (),
    ) -> bool: ...

    # -- journal -----------------------------------------------------

    def load_journal(self, run_id: str) -> dict[int, StepRecord]: ...
    def commit_step(
        self,
        record: StepRecord,
        events: Sequence[EventRow],
        state: dict[str, Any] | None = None,
        *,
        output_json: str | None = None,
        lease: str | None = None,
        outbox: Sequence[OutboxMessage] = (),
    ) -> None: ...
    def update_op(
        self,
        run_id: str,
        seq: int,
        fields: dict[str, Any],
        events: Sequence[EventRow] = (),
        run_fields: dict[str, Any] | None = None,
        *,
        lease: str | None = None,
    ) -> None: ...
    def record_attempt(
        self, attempt: Attempt, events: Sequence[EventRow], *, lease: str | None = None
    ) -> None: ...
    def attempts(self, run_id: str, seq: int) -> list[Attempt]: ...
    def delete_ops(self, run_id: str, seqs: Sequence[int]) -> None: ...

    # -- events ------------------------------------------------------

    def append_events(self, run_id: str, events: Sequence[EventRow]) -> None: ...
    def events(
        self,
        run_id: str,
        *,
        after_id: int = 0,
        types: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Event]: ...
    def count_events(self, run_id: str) -> int: ...

    # -- signals and hooks -------------------------------------------

    def add_signal(self, run_id: str, name: str, payload: Any, now: float) -> Run | None: ...
    def consume_signal(
        self,
        run_id: str,
        seq: int,
        names: Sequence[str],
        now: float,
        event_type: str,
        hook: str | None = None,
        deadline: float | None = None,
        *,
        lease: str | None = None,
    ) -> Signal | None: ...
    def expire_wait(
        self,
        run_id: str,
        seq: int,
        names: Sequence[str],
        deadline: float,
        now: float,
        events: Sequence[EventRow],
    ) -> list[Signal]: ...
    def signals(self, run_id: str) -> list[Signal]: ...
    def create_hook(
        self,
        token: str,
        run_id: str,
        seq: int,
        name: str,
        data: Any,
        now: float,
        *,
        lease: str | None = None,
    ) -> None: ...
    def open_hooks(self, run_id: str) -> list[dict[str, Any]]: ...
    def deliver_hook(
        self, token: str, payload: Any, now: float
    ) -> tuple[Run | None, str, str | None]: ...

    # -- schedules ---------------------------------------------------

    def save_schedule(self, schedule: Schedule) -> None: ...
    def get_schedule(self, schedule_id: str) -> Schedule | None: ...
    def list_schedules(self) -> list[Schedule]: ...
    def delete_schedule(self, schedule_id: str) -> bool: ...
    def due_schedules(self, now: float) -> list[Schedule]: ...
    def advance_schedule(
        self,
        schedule_id: str,
        expected_next: float | None,
        next_fire_at: float | None,
        run_id: str,
        missed: Sequence[float],
        now: float,
    ) -> bool: ...

    # -- topics, quotas and the outbox -------------------------------

    def append_message(
        self,
        broker: str,
        topic: str,
        message: Any,
        run_id: str | None,
        now: float,
        *,
        message_id: str | None = None,
    ) -> int: ...
    def read_messages(
        self, broker: str, topic: str, from_offset: int = 0, limit: int = 1000
    ) -> list[dict[str, Any]]: ...
    def list_topics(self) -> list[dict[str, Any]]: ...
    def take_quota(
        self, quota: str, key: str, limit: int, per_seconds: float, now: float
    ) -> tuple[bool, int, float]: ...
    def consumer_offset(self, consumer: str, broker: str, topic: str) -> int: ...
    def set_consumer_offset(
        self, consumer: str, broker: str, topic: str, next_offset: int
    ) -> None: ...
    def claim_outbox(
        self,
        owner: str,
        now: float,
        lease: float,
        limit: int = 100,
        dead_owners: Sequence[str] = (),
    ) -> list[OutboxMessage]: ...
    def outbox_sent(self, message_ids: Sequence[str], now: float) -> None: ...
    def outbox_failed(self, message_id: str, error: str, retry_at: float) -> None: ...
    def outbox_senders_on_host(self, host: str) -> list[str]: ...
    def outbox_status(self) -> list[dict[str, Any]]: ...

    # -- operations --------------------------------------------------

    def prune_batch(
        self,
        *,
        ended_before: float,
        statuses: Sequence[str] | None,
        tags: Sequence[str] | None,
        limit: int,
        dry_run: bool = False,
        after_id: str = "",
    ) -> list[tuple[str, str, str]]: ...
    def export_rows(self, run_id: str) -> dict[str, list[dict[str, Any]]]: ...
    def import_rows(
        self, runs: Sequence[dict[str, list[dict[str, Any]]]], definitions: Sequence[dict[str, Any]]
    ) -> None: ...
    def queue_stats(self, now: float) -> dict[str, float]: ...
    def backup(self, target: str | Path) -> int: ...
    def vacuum(self) -> tuple[int, int]: ...
