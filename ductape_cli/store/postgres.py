"""The PostgreSQL store: the SQLite store's statements on a pooled psycopg 3 connection.

`PostgresStore` inherits every method of `SqliteStore`; its `conn` is a
`Session` that rewrites each statement for PostgreSQL (`pg_dialect.statement`)
and turns every driver error into a ductape error. Only what PostgreSQL does
differently is written here: migrations under an advisory lock, claims with
``FOR UPDATE SKIP LOCKED``, wake-ups by ``LISTEN/NOTIFY``, the feed triggers
in plpgsql, and a create that survives two hosts racing for one idempotency key.
And the hot writes, which SQLite does as a transaction of several statements
(cheap there: no network), are one statement each here (data-modifying CTEs):
creating a run, claiming runs, recording a step, finishing a run. Each is one
round trip and one commit, where a transaction costs a round trip for every
result it reads before its COMMIT.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from ductape_cli.errors import (
    DuctapeError,
    LeaseLost,
    RunIdTaken,
    StepTaken,
    StoreBusy,
    StoreError,
    StoreUnavailable,
)
from ductape_cli.models import Run, StepRecord
from ductape_cli.store.encoding import dumps, encoded_values
from ductape_cli.store.migrations import MIGRATIONS, NAMESPACE_MIGRATION
from ductape_cli.store.pg_dialect import PG_FEED_TRIGGERS, PG_MIGRATIONS, ddl, statement
from ductape_cli.store.protocol import StepWrite
from ductape_cli.store.sqlite import (
    _FENCE_RUN,
    _LEASED,
    _QUEUED,
    _RUN_COLUMNS,
    _STEP_COLUMNS,
    EventRow,
    SqliteStore,
    new_lease,
)
from ductape_cli.store.sqlite_ops import queue_stats
from ductape_cli.store.sqlite_outbox import OutboxMessage

logger = logging.getLogger("ductape.store")

POOL_MAX = int(os.environ.get("DUCTAPE_PG_POOL_MAX", "8"))
# seconds to reach the server
CONNECT_TIMEOUT = float(os.environ.get("DUCTAPE_PG_CONNECT_TIMEOUT", "10"))
SERIAL_TABLES = ("topic_messages", "quota_buckets")
_META = "CREATE TABLE IF NOT EXISTS ductape_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


# Events written by the statement that writes their run (`source`, a CTE returning its id): the
# rows travel as four arrays (one per column), in order, so any number of events is one statement.
_LOG_EVENTS = (
    "logged AS (INSERT INTO events (run_id, ts, type, step, data) "
    "SELECT {source}.id, e.ts, e.type, e.step, e.data FROM {source}, "
    "unnest(?::float8[], ?::text[], ?::text[], ?::text[]) WITH ORDINALITY AS e(ts, type, step, data, n) "
    "ORDER BY e.n)"
)
_VALUES_36 = ", ".join("?" * 36)
_VALUES_18 = ", ".join("?" * 18)
_PICKED_COLUMNS = ", ".join(f"numbered.{c.strip()}" for c in _RUN_COLUMNS.split(","))


def _event_arrays(events: Sequence[EventRow]) -> tuple[list[Any], ...]:
    """`events` as the four arrays `_LOG_EVENTS` unnests."""
    return (
        [float(ts) for ts, _, _, _ in events],
        [type_ for _, type_, _, _ in events],
        [step for _, _, step, _ in events],
        [None if data is None else dumps(data) for _, _, _, data in events],
    )


class IdempotencyTaken(StoreError):
    """Two creates raced for one idempotency key and this one lost (handled inside `create_run`)."""


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


_pools: dict[tuple[str, int], ConnectionPool] = {}
_pools_lock = threading.Lock()


def pool_for(url: str) -> ConnectionPool:
    """One pool per URL and process (a forked child opens its own)."""
    key = (url, os.getpid())
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = ConnectionPool(
                url,
                min_size=1,
                max_size=POOL_MAX,
                open=False,
                timeout=30,
                name="ductape",
                kwargs={"autocommit": True, "connect_timeout": max(1, int(CONNECT_TIMEOUT))},
            )
            try:
                pool.open(wait=True, timeout=CONNECT_TIMEOUT)
            except PoolTimeout:
                pool.close()
                raise StoreUnavailable(
                    f"cannot connect to store {redact(url)} within {CONNECT_TIMEOUT:g}s"
                ) from None
            _pools[key] = pool
        return pool


def close_pools(url: str) -> None:
    """Close this process's pool for `url` (tests dropping their schema; a CLI about to exit)."""
    with _pools_lock:
        pool = _pools.pop((url, os.getpid()), None)
    if pool is not None:
        pool.close()


def translate(exc: Exception, where: str) -> DuctapeError:
    """A driver error as the ductape error the engine understands."""
    if isinstance(exc, pg_errors.UniqueViolation):
        constraint = exc.diag.constraint_name or ""
        if constraint == "steps_pkey":
            return StepTaken(f"{where}: journal position already recorded by another owner")
        if constraint == "runs_pkey":
            return RunIdTaken(_detail_value(exc) or "?")
        if constraint == "runs_idempotency":
            return IdempotencyTaken(f"{where}: idempotency key taken meanwhile")
        return StoreError(f"store {where}: {exc.diag.message_primary} ({constraint})")
    if isinstance(
        exc,
        (pg_errors.DeadlockDetected, pg_errors.SerializationFailure, pg_errors.LockNotAvailable),
    ):
        return StoreBusy(f"store {where}: {exc.diag.message_primary}; retry")
    if isinstance(exc, (psycopg.OperationalError, PoolTimeout)):
        return StoreUnavailable(
            f"store {where} unavailable: {str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__}"
        )
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return StoreError(f"store {where}: {first_line}")


def _detail_value(exc: pg_errors.UniqueViolation) -> str | None:
    detail = exc.diag.message_detail or ""  # Key (id)=(abc) already exists.
    start, end = detail.find(")=("), detail.rfind(")")
    return detail[start + 3 : end] if start != -1 and end > start else None


class _Result:
    """A statement's outcome. Outside a transaction its rows are fetched at once (the connection goes
    back to the pool right after); inside one (a pipeline) they are fetched when first asked for,
    so statements whose outcome nobody reads travel with the next one that is read, or the COMMIT."""

    def __init__(
        self, cur: psycopg.Cursor[Any] | None = None, pipeline: Any = None, where: str = ""
    ) -> None:
        self._cur, self._pipeline, self._where = cur, pipeline, where
        self._rows: list[tuple[Any, ...]] | None = None if cur is not None else []
        self._next = 0
        self._rowcount = -1
        self._description: Any = None
        if pipeline is None and cur is not None:
            self._load()

    def _load(self) -> None:
        cur = self._cur
        if self._rows is not None or cur is None:
            return
        try:
            if self._pipeline is not None:
                self._pipeline.sync()
            self._description, self._rowcount = cur.description, cur.rowcount
            self._rows = cur.fetchall() if cur.description is not None else []
        except psycopg.Error as exc:
            raise translate(exc, self._where) from None

    @property
    def rowcount(self) -> int:
        self._load()
        return self._rowcount

    @property
    def description(self) -> Any:
        self._load()
        return self._description

    def fetchone(self) -> tuple[Any, ...] | None:
        self._load()
        rows = self._rows or []
        if self._next >= len(rows):
            return None
        self._next += 1
        return rows[self._next - 1]

    def fetchall(self) -> list[tuple[Any, ...]]:
        self._load()
        rows = self._rows or []
        out, self._next = rows[self._next :], len(rows)
        return out

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.fetchall())


class Session:
    """What `SqliteStore` code calls `self.conn`: statements in SQLite spelling, run on PostgreSQL.

    Outside a transaction each statement borrows a pooled connection; ``BEGIN`` holds one
    until ``COMMIT`` or ``ROLLBACK``. Inside, plain SELECTs lock the rows they read, and the
    statements go through a pipeline: a write transaction costs a round trip per statement
    whose outcome it reads, plus one for the rest and the COMMIT.
    """

    def __init__(
        self,
        pool: ConnectionPool,
        where: str,
        primary_keys: tuple[tuple[str, tuple[str, ...]], ...],
    ) -> None:
        self.pool = pool
        self.where = where
        self.primary_keys = primary_keys
        self._held: psycopg.Connection[Any] | None = None
        self._pipeline: Any = None
        self._pipeline_cm: Any = None
        self._locked: set[str] = set()

    @property
    def in_transaction(self) -> bool:
        return self._held is not None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Result:
        verb = sql.strip().upper()
        if verb in ("BEGIN", "BEGIN IMMEDIATE"):
            self._begin()
            return self._run(self._held, "BEGIN", ())  # type: ignore[arg-type]
        if verb in ("COMMIT", "ROLLBACK"):
            return self._end(verb)
        if verb.startswith("PRAGMA TABLE_INFO("):
            return self._columns(sql.strip()[len("PRAGMA table_info(") : -1])
        if self._held is not None:
            self._serialise(sql)
            return self._run(self._held, statement(sql, self.primary_keys, True), params)
        return self._once(statement(sql, self.primary_keys, False), params)

    def _once(self, sql: str, params: Sequence[Any]) -> _Result:
        """A statement that is its own transaction, on a connection borrowed for it alone.
        (`getconn`/`putconn`, not `pool.connection()`, whose exit also runs a commit: nothing
        to commit in autocommit, but Python work on every statement.)"""
        try:
            conn = self.pool.getconn()
        except PoolTimeout as exc:
            raise translate(exc, self.where) from None
        try:
            return self._run(conn, sql, params)
        finally:
            self.pool.putconn(conn)

    def _columns(self, table: str) -> _Result:
        """SQLite's ``PRAGMA table_info``: rows whose second field is a column name."""
        sql = (
            "SELECT ordinal_position, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position"
        )
        if self._held is not None:
            return self._run(self._held, sql, (table,))
        return self._once(sql, (table,))

    def _serialise(self, sql: str) -> None:
        """A write transaction that reads a log or a bucket (topic offsets, quota tokens) to
        compute what it writes takes that table's transaction lock first: rows it reads may not
        exist yet, so row locks cannot order two such writers (SQLite's single writer does)."""
        for table in SERIAL_TABLES:
            if table not in self._locked and f"FROM {table}" in sql:
                self._locked.add(table)
                self._run(
                    self._held,  # type: ignore[arg-type]
                    "SELECT pg_advisory_xact_lock(hashtext(current_schema() || %s))",
                    (":" + table,),
                )

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self._held is None:
            for params in rows:
                self.execute(sql, params)
            return
        self._serialise(sql)
        try:
            self._held.cursor().executemany(
                statement(sql, self.primary_keys, True), [tuple(r) for r in rows]
            )
        except psycopg.Error as exc:
            raise translate(exc, self.where) from None

    def _run(self, conn: psycopg.Connection[Any], sql: str, params: Sequence[Any]) -> _Result:
        pipeline = self._pipeline if conn is self._held else None
        try:
            return _Result(conn.execute(sql, tuple(params)), pipeline, self.where)
        except psycopg.Error as exc:
            raise translate(exc, self.where) from None

    def _begin(self) -> None:
        if self._held is not None:
            raise StoreError(f"store {self.where}: a transaction is already open")
        try:
            conn = self.pool.getconn()
        except PoolTimeout as exc:
            raise translate(exc, self.where) from None
        self._pipeline_cm = conn.pipeline()
        self._held, self._pipeline = conn, self._pipeline_cm.__enter__()

    def _end(self, verb: str) -> _Result:
        conn, pipeline, self._held, self._pipeline = self._held, self._pipeline_cm, None, None
        self._locked.clear()
        if conn is None:
            return _Result()
        failure: DuctapeError | None = None
        try:
            if verb == "COMMIT":
                conn.execute("COMMIT")
            pipeline.__exit__(None, None, None)  # sends what is queued and reads every outcome
        except psycopg.Error as exc:
            # On ROLLBACK the error was raised already (the statement that failed, or the caller's);
            # on COMMIT it is news: a deferred statement failed, or the commit itself.
            failure = translate(exc, self.where) if verb == "COMMIT" else None
            try:
                pipeline.__exit__(None, None, None)
            except psycopg.Error:
                pass  # the pipeline is aborted: its first error is the one that matters
        try:
            if (
                verb == "ROLLBACK"
                or failure is not None
                or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
            ):
                conn.rollback()
        except psycopg.Error:
            logger.exception(
                "rolling back on %s failed; the pool discards the connection", self.where
            )
        finally:
            self.pool.putconn(conn)
        if failure is not None:
            raise failure
        return _Result()

    def close(self) -> None:
        if self._held is not None:
            self._end("ROLLBACK")


class PostgresStore(SqliteStore):
    """ductape's state in a PostgreSQL database (or one schema of it), shared by many hosts."""

    backend = "postgresql"
    conn: Session  # type: ignore[assignment]

    def __init__(
        self,
        url: str,
        *,
        durability: str = "normal",
        namespace: str | None = None,
        migrate: bool = True,
    ) -> None:
        self.path = url
        self.where = redact(url)
        self.durability = durability
        self.namespace = namespace
        self._scope = "" if namespace is None else " AND namespace = ?"
        self._scoped: tuple[str, ...] = () if namespace is None else (namespace,)
        try:
            self.pool = pool_for(url)
        except psycopg.Error as exc:
            raise translate(exc, self.where) from None
        self.conn = Session(self.pool, self.where, ())
        if migrate:
            self._migrate()
            if namespace is not None:
                self._adopt_legacy(namespace)
        self.conn.primary_keys = self._primary_keys()

    # -- plumbing ---------------------------------------------------------

    def close(self) -> None:
        self.conn.close()
        self.closed = True

    def checkpoint(self) -> None:
        """Nothing to do: PostgreSQL checkpoints by itself."""

    @contextmanager
    def _gated(self) -> Iterator[None]:
        """No process-wide write gate: PostgreSQL runs writers side by side (rows are locked instead)."""
        yield

    @contextmanager
    def _write(self) -> Iterator[Session]:  # type: ignore[override]
        conn = self.conn
        if conn.in_transaction:  # an override's transaction around the shared method's own
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def _primary_keys(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        rows = self._read(
            "SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc "
            "JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name "
            "AND kcu.table_schema = tc.table_schema WHERE tc.constraint_type = 'PRIMARY KEY' "
            "AND tc.table_schema = current_schema() ORDER BY tc.table_name, kcu.ordinal_position"
        )
        keys: dict[str, list[str]] = {}
        for table, column in rows:
            keys.setdefault(table, []).append(column)
        return tuple((t, tuple(c)) for t, c in sorted(keys.items()))

    def schema_version(self) -> tuple[int, int]:
        """(shared migrations applied, PostgreSQL-only migrations applied); (0, 0) when empty."""
        rows = self._read("SELECT to_regclass('ductape_meta') IS NOT NULL")
        if not rows[0][0]:
            return 0, 0
        meta = dict(self._read("SELECT key, value FROM ductape_meta"))
        return int(meta.get("schema_version", 0)), int(meta.get("pg_version", 0))

    def _migrate(self, upto: int | None = None) -> None:
        """Apply the migrations this database lacks, in one transaction under an advisory lock,
        so workers starting together on an empty database migrate it exactly once.
        `upto` stops after that many shared migrations (tests build older databases with it)."""
        target = len(MIGRATIONS) if upto is None else upto
        pg_target = len(PG_MIGRATIONS) if upto is None else 0
        version, pg_version = self.schema_version()
        if version > len(MIGRATIONS):
            raise StoreError(
                f"store {self.where} has schema version {version}, newer than this ductape "
                f"({len(MIGRATIONS)}); upgrade ductape"
            )
        if version >= target and pg_version >= pg_target:
            return
        with self._write() as conn:
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':ductape-migrate'))"
            )
            conn.execute(_META)
            version, pg_version = self.schema_version()  # again, under the lock
            for sql in MIGRATIONS[version:target]:
                conn.execute(ddl(sql))
            if 0 < version <= MIGRATIONS.index(NAMESPACE_MIGRATION) < target:
                # Runs from before namespaces belong to the first project that opens the store.
                conn.execute(
                    "INSERT INTO store_meta (key, value) VALUES ('adopt_legacy', '1') ON CONFLICT DO NOTHING"
                )
            for sql in PG_MIGRATIONS[pg_version:pg_target]:
                conn.execute(sql)
            for key, value in (
                ("schema_version", max(version, target)),
                ("pg_version", max(pg_version, pg_target)),
            ):
                conn.execute(
                    "INSERT INTO ductape_meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    (key, str(value)),
                )
        self.conn.primary_keys = self._primary_keys()

    # -- runs -------------------------------------------------------------

    def create_run(
        self, run: Run, events: Sequence[EventRow], journal: Sequence[StepRecord] = ()
    ) -> tuple[Run, bool]:
        """As SQLite's, in one statement (one round trip) unless it copies a journal; when another
        host created a run with the same idempotency key between the check and the insert, the
        unique index refuses ours and theirs comes back."""
        try:
            if journal:
                return super().create_run(run, events, journal)
            return self._create_at_once(run, events)
        except IdempotencyTaken:
            rows = self._read(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE tag = ? AND idempotency_key = ?{self._scope}",
                (run.tag, run.idempotency_key, *self._scoped),
            )
            if not rows:
                raise
            return self._run(rows[0]), False

    def _create_at_once(self, run: Run, events: Sequence[EventRow]) -> tuple[Run, bool]:
        """The run and its events in one statement: a run with the same idempotency key comes back
        instead (nothing written), a taken id fails the insert (`RunIdTaken`, by its constraint)."""
        values = (*self._run_values(run), self.namespace or "")
        if run.idempotency_key is None:
            self.conn.execute(
                f"WITH created AS (INSERT INTO runs ({_RUN_COLUMNS}, namespace) "
                f"VALUES ({_VALUES_36}) RETURNING id), {_LOG_EVENTS.format(source='created')} "
                "SELECT 1",
                (*values, *_event_arrays(events)),
            )
            return run, True
        rows = self.conn.execute(
            f"WITH existing AS (SELECT {_RUN_COLUMNS} FROM runs "
            f"WHERE tag = ? AND idempotency_key = ?{self._scope} LIMIT 1), "
            f"created AS (INSERT INTO runs ({_RUN_COLUMNS}, namespace) SELECT {_VALUES_36} "
            "WHERE NOT EXISTS (SELECT 1 FROM existing) RETURNING id), "
            f"{_LOG_EVENTS.format(source='created')} SELECT {_RUN_COLUMNS} FROM existing",
            (
                run.tag,
                run.idempotency_key,
                *self._scoped,
                *values,
                *_event_arrays(events),
            ),
        ).fetchall()
        return (self._run(rows[0]), False) if rows else (run, True)

    def finish_run(
        self,
        run_id: str,
        lease: str,
        fields: dict[str, Any],
        events: Sequence[EventRow],
        step: StepWrite | None = None,
    ) -> bool:
        """As SQLite's, in one statement (one round trip): the fenced update and, if it applied,
        the events; with `step`, its journal row first, the update applying only if the row was
        recorded. With a claim asked to ride on this finish (`claim_on_finish`) or outbox
        messages on the step, SQLite's transaction (the finish and the next claim commit
        together: two round trips, one fewer than finishing and then claiming)."""
        riding = self._ride is not None and self._ride[0] == run_id
        if riding or (step is not None and step.outbox):
            return super().finish_run(run_id, lease, fields, events, step)
        if step is not None and step.state is not None and "state" not in fields:
            fields = {**fields, "state": step.state}
        values = encoded_values("runs", fields)
        assignments = ", ".join(f"{k} = ?" for k in fields)
        if step is None:
            sql = (
                f"WITH finished AS (UPDATE runs SET {assignments}, "
                f"lease = NULL WHERE id = ? AND {_FENCE_RUN} RETURNING id), "
                f"{_LOG_EVENTS.format(source='finished')} SELECT count(*) FROM finished"
            )
            params: tuple[Any, ...] = (*values, run_id, lease, *_event_arrays(events))
        else:
            step_values = self._step_values(step.record, step.output_json)
            sql = (
                f"WITH recorded AS (INSERT INTO steps ({_STEP_COLUMNS}) SELECT {_VALUES_18} "
                f"WHERE EXISTS (SELECT 1 FROM runs WHERE id = ? AND {_FENCE_RUN}) "
                "RETURNING run_id AS id), "
                f"finished AS (UPDATE runs SET {assignments}, lease = NULL FROM recorded "
                f"WHERE runs.id = recorded.id AND runs.{_FENCE_RUN} RETURNING runs.id AS id), "
                f"{_LOG_EVENTS.format(source='finished')} SELECT count(*) FROM finished"
            )
            params = (
                *step_values,
                run_id,
                lease,
                *values,
                lease,
                *_event_arrays([*step.events, *events]),
            )
        rows = self.conn.execute(sql, params).fetchall()
        if not rows[0][0]:
            return False
        self._ridden = None
        return True

    def commit_step(
        self,
        record: StepRecord,
        events: Sequence[EventRow],
        state: dict[str, Any] | None = None,
        *,
        output_json: str | None = None,
        lease: str | None = None,
        outbox: Sequence[OutboxMessage] = (),
    ) -> None:
        """As SQLite's, in one statement unless it carries outbox messages: the (fenced) journal
        row, and from its RETURNING the events and the state when there are any."""
        if outbox:
            super().commit_step(
                record, events, state, output_json=output_json, lease=lease, outbox=outbox
            )
            return
        if not events and state is None:  # the hot path: one INSERT
            if self.conn.execute(*self._step_insert(record, output_json, lease)).rowcount != 1:
                raise LeaseLost(
                    f"run {record.run_id}: lease lost; step {record.tag!r} not recorded"
                )
            return
        values = self._step_values(record, output_json)
        fence = (
            ""
            if lease is None
            else f" WHERE EXISTS (SELECT 1 FROM runs WHERE id = ? AND {_FENCE_RUN})"
        )
        stated = (
            ""
            if state is None
            else ", stated AS (UPDATE runs SET state = ? FROM recorded WHERE runs.id = recorded.id)"
        )
        rows = self.conn.execute(
            f"WITH recorded AS (INSERT INTO steps ({_STEP_COLUMNS}) SELECT {_VALUES_18}{fence} "
            f"RETURNING run_id AS id), {_LOG_EVENTS.format(source='recorded')}{stated} "
            "SELECT count(*) FROM recorded",
            (
                *values,
                *(() if lease is None else (record.run_id, lease)),
                *_event_arrays(events),
                *(() if state is None else (dumps(state),)),
            ),
        ).fetchall()
        if not rows[0][0]:
            raise LeaseLost(f"run {record.run_id}: lease lost; step {record.tag!r} not recorded")

    def wake_parent(self, parent_id: str, now: float) -> None:
        """As SQLite's, after locking the parent's row. Under READ COMMITTED an UPDATE whose
        conditions (suspended: no owner, waiting for a child) only become true when the parent's
        suspend commits skips the row, a lost wake-up; the lock waits for that commit first."""
        with self._write() as conn:
            conn.execute(
                "SELECT 1 FROM runs WHERE id = ?", (parent_id,)
            )  # FOR UPDATE in a transaction
            super().wake_parent(parent_id, now)

    def claim_ready(
        self,
        owner: str,
        now: float,
        ttl: float,
        limit: int,
        tags: Sequence[str] | None = None,
        dead_owners: Sequence[str] = (),
        stale_leases: Sequence[str] | None = None,
    ) -> list[Run]:
        """As SQLite's (an expired lease is taken over only if in `stale_leases`, when given), but rows
        another worker is claiming right now are skipped, not waited for (``FOR UPDATE SKIP
        LOCKED``), so workers on many hosts never queue behind each other. One statement (one
        round trip): the rows picked and locked, numbered in queue order so each gets its own
        fresh lease from an array, updated; the runs come back as they were before the claim."""
        tag_clause = " AND tag = ANY(?)" if tags else ""
        tagged: list[Any] = [list(tags)] if tags else []
        # Runs nobody owns come off the queue's partial index in due order (a condition that
        # also admitted owned runs would make PostgreSQL read every queued run and sort them);
        # runs in flight are looked at only when some may be taken over, through their own index.
        sources = [
            f"queued AS MATERIALIZED (SELECT {_RUN_COLUMNS} FROM runs WHERE {_QUEUED} "
            f"AND ready_at <= ?{tag_clause}{self._scope} "
            "ORDER BY ready_at LIMIT ? FOR UPDATE SKIP LOCKED)"
        ]
        params: list[Any] = [now, *tagged, *self._scoped, limit]
        takeover: list[str] = []
        takeover_params: list[Any] = []
        if stale_leases is None:
            takeover.append("lease_expires_at < ?")
            takeover_params.append(now)
        elif stale_leases:
            takeover.append("(lease_expires_at < ? AND lease = ANY(?))")
            takeover_params += [now, list(stale_leases)]
        if dead_owners:
            takeover.append("owner = ANY(?)")
            takeover_params.append(list(dead_owners))
        if takeover:
            sources.append(
                f"orphans AS MATERIALIZED (SELECT {_RUN_COLUMNS} FROM runs WHERE {_LEASED} "
                f"AND ready_at <= ? AND ({' OR '.join(takeover)}){tag_clause}{self._scope} "
                "ORDER BY ready_at LIMIT ? FOR UPDATE SKIP LOCKED)"
            )
            params += [now, *takeover_params, *tagged, *self._scoped, limit]
        union = "SELECT * FROM queued" + (" UNION ALL SELECT * FROM orphans" if takeover else "")
        leases = [new_lease() for _ in range(limit)]
        rows = self.conn.execute(
            f"WITH {', '.join(sources)}, "
            f"picked AS (SELECT * FROM ({union}) AS due ORDER BY ready_at LIMIT ?), "
            "numbered AS (SELECT picked.*, row_number() OVER (ORDER BY ready_at, id) AS n FROM picked) "
            "UPDATE runs SET owner = ?, lease = (?::text[])[numbered.n], lease_expires_at = ?, "
            "status = 'running', started_at = COALESCE(runs.started_at, ?) FROM numbered "
            f"WHERE runs.id = numbered.id RETURNING {_PICKED_COLUMNS}, numbered.n",
            (*params, limit, owner, leases, now + ttl, now),
        ).fetchall()
        runs = []
        for *columns, n in sorted(rows, key=lambda row: row[-1]):
            run = self._run(tuple(columns))
            if run.owner is not None and run.owner != owner:
                run.taken_from = run.owner
            run.owner, run.lease, run.lease_expires_at = owner, leases[n - 1], now + ttl
            runs.append(run)
        return runs

    def renew_leases(self, leases: dict[str, str], now: float, ttl: float) -> set[str]:
        """As SQLite's, in one statement however many runs this process holds (a transaction
        would read each UPDATE's row count: a round trip per run)."""
        if not leases:
            return set()
        rows = self.conn.execute(
            "UPDATE runs SET lease_expires_at = ? FROM unnest(?::text[], ?::text[]) AS held(id, lease) "
            "WHERE runs.id = held.id AND runs.lease = held.lease RETURNING runs.id",
            (now + ttl, list(leases), list(leases.values())),
        ).fetchall()
        return set(leases) - {row[0] for row in rows}

    def _claim_queued_txn(
        self,
        conn: Any,
        owner: str,
        now: float,
        ttl: float,
        limit: int,
        tags: Sequence[str] | None,
    ) -> list[tuple[Any, ...]]:
        """SQLite's queue claim inside a finish (`claim_on_finish`), with rows another worker is
        claiming skipped (``SKIP LOCKED``); one lease for the batch of one it is used for."""
        tag_clause = " AND tag = ANY(?)" if tags else ""
        rows: list[tuple[Any, ...]] = conn.execute(
            "UPDATE runs SET owner = ?, lease = ?, lease_expires_at = ?, status = 'running', "
            "started_at = COALESCE(started_at, ?) WHERE id IN (SELECT id FROM runs "
            f"WHERE status IN ('pending', 'running') AND owner IS NULL AND ready_at <= ?{tag_clause}"
            f"{self._scope} ORDER BY ready_at LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING {_RUN_COLUMNS}",
            (
                owner,
                new_lease(),
                now + ttl,
                now,
                now,
                *([list(tags)] if tags else []),
                *self._scoped,
                limit,
            ),
        ).fetchall()
        return rows

    def next_claim_at(self) -> float | None:
        """When the next run of this namespace becomes claimable: the first due time on the
        queue's index, or the first lease to expire among runs in flight (read through theirs)."""
        rows = self._read(
            f"SELECT LEAST((SELECT ready_at FROM runs WHERE {_QUEUED} AND ready_at IS NOT NULL"
            f"{self._scope} ORDER BY ready_at LIMIT 1), "
            f"(SELECT MIN(GREATEST(ready_at, lease_expires_at)) FROM runs WHERE {_LEASED} "
            f"AND ready_at IS NOT NULL{self._scope}))",
            (*self._scoped, *self._scoped),
        )
        return rows[0][0] if rows else None

    # -- wake-ups -----------------------------------------------------------

    def listen(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call `wake` whenever a run becomes claimable (any host's write), from a thread of its
        own with its own connection; returns the function that stops it."""
        channel = "ductape_" + str(self._read("SELECT current_schema()")[0][0])
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                try:
                    with psycopg.connect(
                        self.path, autocommit=True, connect_timeout=max(1, int(CONNECT_TIMEOUT))
                    ) as conn:
                        conn.execute(
                            psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel))
                        )
                        wake()  # anything queued while we were not listening
                        while not stop.is_set():
                            for _ in conn.notifies(timeout=0.5, stop_after=1):
                                wake()
                except psycopg.Error:
                    logger.exception(
                        "listening for wake-ups on %s failed; reconnecting", self.where
                    )
                    stop.wait(1.0)

        thread = threading.Thread(target=loop, name="ductape-listen", daemon=True)
        thread.start()

        def stop_listening() -> None:
            stop.set()
            thread.join(timeout=2.0)

        return stop_listening

    # -- the change feed ------------------------------------------------------

    def enable_feed(self) -> None:
        """Install the plpgsql triggers that fill the feed (once; later calls only look)."""
        if self._read(
            "SELECT 1 FROM pg_trigger WHERE tgname = 'feed_step' AND tgrelid = to_regclass('steps')"
        ):
            return
        with self._write() as conn:
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':ductape-migrate'))"
            )
            for sql in PG_FEED_TRIGGERS:
                conn.execute(sql)

    # -- operations -----------------------------------------------------------

    def queue_stats(self, now: float) -> dict[str, float]:
        due = "ready_at <= ? AND (owner IS NULL OR lease_expires_at < ?)"
        idle = "owner IS NULL AND (ready_at IS NULL OR ready_at > ?)"
        row = self._read(
            f"SELECT SUM(CASE WHEN {due} THEN 1 ELSE 0 END), MIN(CASE WHEN {due} THEN ready_at END), "
            "SUM(CASE WHEN owner IS NOT NULL AND lease_expires_at >= ? THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {idle} THEN 1 ELSE 0 END), "
            f"MIN(CASE WHEN {idle} THEN COALESCE(started_at, created_at) END) "
            "FROM runs WHERE status IN ('pending', 'running')",
            (now, now, now, now, now, now, now),
        )[0]
        return queue_stats(row, now)

    def backup(self, target: Any) -> int:
        raise StoreError(
            f"`ductape store backup` is for SQLite stores; back up {self.where} with pg_dump"
        )

    def vacuum(self) -> tuple[int, int]:
        raise StoreError(
            f"`ductape store vacuum` is for SQLite stores; PostgreSQL runs autovacuum ({self.where})"
        )


__all__ = ["EventRow", "PostgresStore", "Session", "pool_for", "redact"]
