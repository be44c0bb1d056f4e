"""The SQLite store: every SQL statement ductape runs against its state lives here.

One connection per `SqliteStore` (and so per thread). Writers use
``BEGIN IMMEDIATE`` so they wait for the write lock (`sqlite_gate`: a fair
gate per file in this process, a `flock` across the processes of this host) instead of
failing half-way; readers never block in WAL mode. Public methods open their own
transaction; ``_txn`` helpers run inside the caller's.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ductape_cli.errors import LeaseLost, RunIdTaken, StepTaken, StoreBusy, StoreError
from ductape_cli.models import (
    Attempt,
    Definition,
    Event,
    FeedRow,
    OpKind,
    Run,
    RunStatus,
    Signal,
    StepRecord,
    StepStatus,
)
from ductape_cli.store.backend import BackendMixin
from ductape_cli.store.encoding import dumps, encoded_values
from ductape_cli.store.encoding import loads as _loads
from ductape_cli.store.migrations import FEED_TRIGGERS, MIGRATIONS, NAMESPACE_MIGRATION
from ductape_cli.store.protocol import StepWrite
from ductape_cli.store.sqlite_gate import gate_for, host_lock_for, retry
from ductape_cli.store.sqlite_jobs import SchedulesAndTopicsMixin
from ductape_cli.store.sqlite_ops import OpsMixin
from ductape_cli.store.sqlite_outbox import OutboxMessage, OutboxMixin

BUSY_TIMEOUT_MS = 30_000
AUTOCHECKPOINT_PAGES = 10_000
# Under durability="full" every commit fsyncs the WAL, and an fsync that grows the file also commits
# the filesystem's journal (ext4: up to twice the cost of one that rewrites blocks the file has). A
# checkpoint every ~1 MB of WAL lets the next commit start the WAL over from its beginning, so the
# commits after the first megabyte rewrite the same file instead of growing it.
FULL_AUTOCHECKPOINT_PAGES = 256
NEW_FILE_GRACE = 5.0  # seconds an empty store file may be another process's brand-new store
EventRow = tuple[float, str, str | None, dict[str, Any] | None]  # (ts, type, step, data)

_RUN_COLUMNS = (
    "id, tag, version, status, env, input, output, error, failed_step, rollback_result, context, "
    "state, idempotency_key, parent_id, replayed_from, restarted_from, resumed_from, lineage, "
    "options, created_at, started_at, ended_at, deadline, owner, lease_expires_at, ready_at, "
    "waiting, cancel_requested, current_step, phase, schedule_id, metadata, lease, load_error, load_attempts"
)
# A listing reads the same row shape with the payloads left out: they can be megabytes each.
_SUMMARY_COLUMNS = ", ".join(
    "NULL" if c in ("input", "output", "error", "rollback_result", "context", "state") else c
    for c in _RUN_COLUMNS.split(", ")
)
_STEP_COLUMNS = (
    "run_id, seq, kind, tag, status, input, output, error, attempts, started_at, ended_at, "
    "options, has_rollback, critical, rollback_status, rollback_error, wake_at, source"
)
_INSERT_EVENT = "INSERT INTO events (run_id, ts, type, step, data) VALUES (?, ?, ?, ?, ?)"
_INSERT_STEP = f"INSERT INTO steps ({_STEP_COLUMNS}) VALUES ({', '.join('?' * 18)})"
_ACTIVE = ("pending", "running")
# The WHERE terms of the partial indexes `runs_queue` and `runs_leased`, written as the indexes are,
# so SQLite can use them (and `INDEXED BY` makes sure it does: a claim must never scan the queue).
_QUEUED = "status IN ('pending', 'running') AND owner IS NULL"
_LEASED = "status IN ('pending', 'running') AND owner IS NOT NULL"
# The fence: an owner's write applies only while its claim's token is the run's current lease.
_FENCE_RUN = "lease = ?"
_INSERT_STEP_FENCED = (
    f"INSERT INTO steps ({_STEP_COLUMNS}) SELECT {', '.join('?' * 18)} "
    f"WHERE EXISTS (SELECT 1 FROM runs WHERE id = ? AND {_FENCE_RUN})"
)


def new_lease() -> str:
    """A fresh fencing token for one claim of a run."""
    return os.urandom(
        8
    ).hex()  # what secrets.token_hex does, without importing hmac on every command


class ConstraintViolated(StoreError):
    """A write transaction broke a key or another constraint (rolled back): the callers that
    expect one (a journal position taken) turn it into their own error."""


def _translate(exc: sqlite3.Error, path: str) -> StoreError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreBusy(
            f"store {path} stayed busy for {BUSY_TIMEOUT_MS // 1000}s; another process holds a long write"
        )
    if "readonly" in text or "read-only" in text:
        return StoreError(f"store {path} is read-only: {text}")
    if "disk is full" in text or "disk I/O" in text:
        return StoreError(f"cannot write store {path}: {text}")
    if "not a database" in text or "malformed" in text:
        return StoreError(f"store {path} is corrupt or not a ductape store: {text}")
    if "unable to open" in text:
        return StoreError(f"cannot open store {path}: {text}")
    return StoreError(f"store {path}: {text}")


def _upper(prefix: str) -> str:
    """The least string above every string that starts with `prefix` (for a key range)."""
    return prefix + "\U0010ffff"


def _prepare_file(path: Path) -> None:
    """Create the store folder (0700) and file (0600): inputs, outputs and hook tokens live there.

    An existing file that is empty is refused unless it is seconds old (another
    process creating the store right now): an emptied store must not quietly
    become a new one.
    """
    folder = path.parent
    try:
        if not folder.exists():
            folder.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(f"cannot create store folder {folder}: {exc.strerror or exc}") from None
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        try:
            info = path.stat()
        except OSError:
            return
        if (
            stat.S_ISREG(info.st_mode)
            and info.st_size == 0
            and time.time() - info.st_mtime > NEW_FILE_GRACE
        ):
            raise StoreError(
                f"store {path} is an empty file, not a ductape store (its runs are gone); "
                "move it away to start a new store"
            ) from None
        return
    except OSError as exc:
        raise StoreError(f"cannot create store {path}: {exc.strerror or exc}") from None
    os.close(fd)


class SqliteStore(SchedulesAndTopicsMixin, OpsMixin, OutboxMixin, BackendMixin):
    """ductape's state in one SQLite file (WAL)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: str = "normal",
        namespace: str | None = None,
    ) -> None:
        self.path = str(path)
        self.durability = durability
        self._gate = gate_for(self.path)
        self._host = host_lock_for(self.path)
        # The project this connection serves: runs, definitions and schedules of other namespaces are
        # invisible to it. None sees every namespace (tools that manage the whole store).
        self.namespace = namespace
        self._scope = "" if namespace is None else " AND namespace = ?"
        self._scoped: tuple[str, ...] = () if namespace is None else (namespace,)
        if self.path != ":memory:":
            _prepare_file(Path(self.path))
        try:
            self.conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Threads of one process open a store one at a time: switching a new file to WAL while
            # another connection migrates it could leave both waiting on each other's lock.
            with self._gated():
                self._open_file(durability, namespace)
            # From here on, waiting for another writer is `sqlite_gate`'s job, not SQLite's sleeping busy handler.
            self.conn.execute("PRAGMA busy_timeout = 0")
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from None

    def _open_file(self, durability: str, namespace: str | None) -> None:
        if self.path != ":memory:":
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"store {self.path}: cannot switch to WAL mode (got {mode})")
        sync = "FULL" if durability == "full" else "NORMAL"
        self.conn.execute(f"PRAGMA synchronous = {sync}")
        # Under "normal", checkpoints run on the lease keeper's thread (`checkpoint`) and this is only
        # the backstop. Under "full" the committing connection checkpoints every ~1 MB of WAL (see
        # FULL_AUTOCHECKPOINT_PAGES), after the commit that crosses the mark is already durable.
        pages = FULL_AUTOCHECKPOINT_PAGES if durability == "full" else AUTOCHECKPOINT_PAGES
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {pages}")
        self._migrate()
        if namespace is not None:
            self._adopt_legacy(namespace)

    # -- plumbing ---------------------------------------------------------

    closed = False

    def close(self) -> None:
        self.conn.close()
        self.closed = True

    def checkpoint(self) -> None:
        """Copy the WAL back into the database without waiting for readers or writers (PASSIVE)."""
        if self.path != ":memory:":
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    @contextmanager
    def _gated(self) -> Iterator[None]:
        """Hold this process's write gate for the store file (threads queue here, not in SQLite)."""
        if not self._gate.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            raise StoreBusy(
                f"store {self.path} stayed busy for {BUSY_TIMEOUT_MS // 1000}s; another thread holds a long write"
            )
        first = self._gate.depth == 1  # the host lock goes with the outermost hold only
        if first and self._host is not None:
            self._host.acquire()
        try:
            yield
        finally:
            if first and self._host is not None:
                self._host.release()
            self._gate.release()

    @contextmanager
    def _patient(self) -> Iterator[None]:
        """Let SQLite itself wait for locks, for the rare statements that wait for readers too (vacuum, backup)."""
        self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        try:
            yield
        finally:
            self.conn.execute("PRAGMA busy_timeout = 0")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        with self._gated():
            try:
                retry(lambda: conn.execute("BEGIN IMMEDIATE"))
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from None
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.IntegrityError):
                    raise ConstraintViolated(_translate(exc, self.path).message) from None
                if isinstance(exc, sqlite3.Error):
                    raise _translate(exc, self.path) from None
                raise

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return retry(lambda: self.conn.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from None

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and self.conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
            raise StoreError(
                f"{self.path} is an SQLite database but not a ductape store; refusing to change it"
            )
        if version > len(MIGRATIONS):
            raise StoreError(
                f"store {self.path} has schema version {version}, newer than this ductape "
                f"({len(MIGRATIONS)}); upgrade ductape"
            )
        if version == len(MIGRATIONS):
            return
        with self._write() as conn:
            # Re-read inside the lock: another process may have migrated meanwhile.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for statement in MIGRATIONS[version:]:
                conn.execute(statement)
            if 0 < version <= MIGRATIONS.index(NAMESPACE_MIGRATION):
                # Runs from before namespaces belong to the first project that opens the store.
                conn.execute(
                    "INSERT OR IGNORE INTO store_meta (key, value) VALUES ('adopt_legacy', '1')"
                )
            conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    def _adopt_legacy(self, namespace: str) -> None:
        """Give rows written before namespaces existed to this project (once, on the first scoped open)."""
        if (
            self.conn.execute("SELECT 1 FROM store_meta WHERE key = 'adopt_legacy'").fetchone()
            is None
        ):
            return
        with self._write() as conn:
            if conn.execute("DELETE FROM store_meta WHERE key = 'adopt_legacy'").rowcount:
                for table in (
                    "runs",
                    "definitions",
                    "schedules",
                    "topic_messages",
                    "quota_buckets",
                ):
                    conn.execute(
                        f"UPDATE {table} SET namespace = ? WHERE namespace = ''", (namespace,)
                    )

    def _run_txn(self, conn: sqlite3.Connection, run_id: str) -> Run | None:
        """Inside a write transaction: the run (of this namespace), as it is now."""
        row = conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?{self._scope}", (run_id, *self._scoped)
        ).fetchone()
        return None if row is None else self._run(row)

    @staticmethod
    def _drop_ops_txn(conn: sqlite3.Connection, run_id: str, seqs: Sequence[int]) -> None:
        """Inside a write transaction: drop journal rows `seqs` and their attempts; the signals
        they consumed become pending again."""
        marks = ", ".join("?" * len(seqs))
        conn.execute(f"DELETE FROM steps WHERE run_id = ? AND seq IN ({marks})", (run_id, *seqs))
        conn.execute(f"DELETE FROM attempts WHERE run_id = ? AND seq IN ({marks})", (run_id, *seqs))
        conn.execute(
            f"UPDATE signals SET consumed_seq = NULL WHERE run_id = ? AND consumed_seq IN ({marks})",
            (run_id, *seqs),
        )

    @staticmethod
    def _fence_txn(conn: sqlite3.Connection, run_id: str, lease: str) -> None:
        """Inside a write transaction: stop (`LeaseLost`, rolled back) unless `lease` is the run's current lease."""
        if (
            conn.execute(
                f"SELECT 1 FROM runs WHERE id = ? AND {_FENCE_RUN}", (run_id, lease)
            ).fetchone()
            is None
        ):
            raise LeaseLost(f"run {run_id}: lease lost to another owner; nothing written")

    @staticmethod
    def _events_txn(conn: sqlite3.Connection, run_id: str, events: Sequence[EventRow]) -> None:
        conn.executemany(
            _INSERT_EVENT,
            [
                (run_id, ts, type_, step, None if data is None else dumps(data))
                for ts, type_, step, data in events
            ],
        )

    # -- definitions ------------------------------------------------------

    def save_definition(
        self, tag: str, version: str, name: str, source_path: str, schema: dict[str, Any]
    ) -> bool:
        """Store a definition version (and make it the latest); True when that version is new."""
        with self._write() as conn:
            namespace = self.namespace or ""
            existed = conn.execute(
                "SELECT 1 FROM definitions WHERE namespace = ? AND tag = ? AND version = ?",
                (namespace, tag, version),
            ).fetchone()
            # An upsert: a reverted version becomes the latest again, and a new source hash is kept.
            conn.execute(
                "INSERT INTO definitions (namespace, tag, version, name, source_path, schema, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (namespace, tag, version) DO UPDATE SET name = excluded.name, "
                "source_path = excluded.source_path, schema = excluded.schema, created_at = excluded.created_at",
                (namespace, tag, version, name, source_path, dumps(schema), time.time()),
            )
            return existed is None

    def latest_definition(self, tag: str) -> Definition | None:
        rows = self._read(
            "SELECT tag, version, name, source_path, schema, created_at FROM definitions "
            f"WHERE tag = ?{self._scope} ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (tag, *self._scoped),
        )
        return self._definition(rows[0]) if rows else None

    def get_definition(self, tag: str, version: str) -> Definition | None:
        rows = self._read(
            "SELECT tag, version, name, source_path, schema, created_at FROM definitions "
            f"WHERE tag = ? AND version >= ? AND version < ?{self._scope} ORDER BY version = ? DESC, created_at DESC LIMIT 1",
            (tag, version, _upper(version), *self._scoped, version),
        )
        return self._definition(rows[0]) if rows else None

    def list_definitions(self, tag: str | None = None) -> list[Definition]:
        sql = f"SELECT tag, version, name, source_path, schema, created_at FROM definitions WHERE 1{self._scope}"
        params: tuple[Any, ...] = self._scoped
        if tag:
            sql += " AND tag = ?"
            params = (*params, tag)
        return [
            self._definition(r)
            for r in self._read(sql + " ORDER BY tag, created_at, rowid", params)
        ]

    @staticmethod
    def _definition(row: tuple[Any, ...]) -> Definition:
        tag, version, name, source_path, schema, created_at = row
        return {
            "tag": tag,
            "version": version,
            "name": name,
            "source_path": source_path,
            "schema": json.loads(schema),
            "created_at": created_at,
        }

    # -- runs -------------------------------------------------------------

    def create_run(
        self, run: Run, events: Sequence[EventRow], journal: Sequence[StepRecord] = ()
    ) -> tuple[Run, bool]:
        """Insert a run (with `journal` rows it starts from, e.g. a replay's copies) unless its
        idempotency key already names one, all in one transaction.

        Returns ``(run, created)``; with an existing key the stored run comes
        back and nothing is written. A taken run id raises `RunIdTaken`.
        """
        with self._write() as conn:
            if run.idempotency_key is not None:
                row = conn.execute(
                    f"SELECT {_RUN_COLUMNS} FROM runs WHERE tag = ? AND idempotency_key = ?{self._scope}",
                    (run.tag, run.idempotency_key, *self._scoped),
                ).fetchone()
                if row is not None:
                    return self._run(row), False
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run.id,)).fetchone():
                raise RunIdTaken(run.id)
            conn.execute(
                f"INSERT INTO runs ({_RUN_COLUMNS}, namespace) VALUES ({', '.join('?' * 36)})",
                (*self._run_values(run), self.namespace or ""),
            )
            if journal:
                conn.executemany(_INSERT_STEP, [self._step_values(r) for r in journal])
            self._events_txn(conn, run.id, events)
        return run, True

    def get_run(self, run_id: str) -> Run | None:
        rows = self._read(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?{self._scope}", (run_id, *self._scoped)
        )
        return self._run(rows[0]) if rows else None

    def find_run_ids(self, fragment: str, limit: int = 5) -> list[str]:
        """Run ids that start or end with `fragment`, literally (no wildcards), at most `limit`.

        The prefix is a range on the primary key; the suffix (the random end of
        generated ids) is looked up by the id's last six characters in `runs_tail`,
        so neither reads more than the matches, however many runs the store holds
        (commands never pass fragments shorter than six characters).
        """
        found = [
            r[0]
            for r in self._read(
                f"SELECT id FROM runs WHERE id >= ? AND id < ?{self._scope} ORDER BY id LIMIT ?",
                (fragment, _upper(fragment), *self._scoped, limit),
            )
        ]
        if len(fragment) >= 6:
            # `substr(id, -6)` written exactly as the index is, so SQLite searches it.
            sql = f"SELECT id FROM runs WHERE substr(id, -6) = ? AND substr(id, -?) = ?{self._scope} ORDER BY id LIMIT ?"
            params: tuple[Any, ...] = (fragment[-6:], len(fragment), fragment, *self._scoped, limit)
        else:  # shorter than any command accepts (MIN_ID_FRAGMENT): a scan, for the store API only
            sql = f"SELECT id FROM runs WHERE substr(id, -?) = ?{self._scope} ORDER BY id LIMIT ?"
            params = (len(fragment), fragment, *self._scoped, limit)
        for (run_id,) in self._read(sql, params):
            if run_id not in found:
                found.append(run_id)
        return found[:limit]

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
    ) -> list[Run]:
        """Runs newest first; with `full=False` the payload columns are not read (input, output, ...: None)."""
        where, params = _run_filter(
            namespace=self.namespace,
            tag=tag,
            status=status,
            parent_id=parent_id,
            schedule_id=schedule_id,
            search=search,
        )
        rows = self._read(
            f"SELECT {_RUN_COLUMNS if full else _SUMMARY_COLUMNS} FROM runs {where} "
            "ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [self._run(r) for r in rows]

    def related_runs(self, run_id: str) -> list[Run]:
        """Runs linked to `run_id` by replay, restart, resume or parenthood (one hop)."""
        # One indexed lookup per lineage column (an ORDER BY here tempts SQLite into walking every run
        # by creation time instead); the few matches are sorted here.
        rows = self._read(
            " UNION ALL ".join(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE {column} = ?{self._scope}"
                for column in ("replayed_from", "restarted_from", "resumed_from", "parent_id")
            ),
            tuple(x for _ in range(4) for x in (run_id, *self._scoped)),
        )
        unique = {r[0]: r for r in rows}  # a run can name `run_id` in two columns
        return sorted(
            (self._run(r) for r in unique.values()), key=lambda run: (run.created_at, run.id)
        )

    def claim_run(
        self, run_id: str, owner: str, now: float, ttl: float, dead_owners: Sequence[str] = ()
    ) -> Run | None:
        """Take the lease of an unfinished run if nobody live holds it."""
        with self._write() as conn:
            run = self._run_txn(conn, run_id)
            if run is None:
                return None
            if run.status not in _ACTIVE:
                return None
            held = (
                run.owner is not None and run.owner != owner and (run.lease_expires_at or 0) > now
            )
            if held and run.owner not in dead_owners:
                return None
            lease = new_lease()
            conn.execute(
                "UPDATE runs SET owner = ?, lease = ?, lease_expires_at = ?, status = 'running', "
                "started_at = COALESCE(started_at, ?) WHERE id = ?",
                (owner, lease, now + ttl, now, run_id),
            )
            if run.owner is not None and run.owner != owner:
                run.taken_from = run.owner
            run.owner, run.lease, run.lease_expires_at = owner, lease, now + ttl
            if run.started_at is None:
                run.started_at = now
            return run

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
        """Claim up to `limit` runs that are due: orphaned (owner dead, or lease expired) first, then
        queued, woken and signalled ones by due time. Each claim gets a fresh lease (fencing token).

        An expired lease is taken over only if it is in `stale_leases` (leases the caller
        watched go unrenewed), when that is given. Each part walks an index and stops after
        the batch (`runs_leased` holds only the runs in flight, `runs_queue` only unowned
        ones), so a claim costs the same with ten or a million runs queued; the write lock
        is held for index walks and updates only, and rows are decoded after the commit.
        """
        if limit <= 0:
            return []
        runs = self._claim_orphans(owner, now, ttl, limit, tags, dead_owners, stale_leases)
        if len(runs) < limit:
            runs += self._claim_queued(owner, now, ttl, limit - len(runs), tags)
        return runs

    def _claim_queued(
        self, owner: str, now: float, ttl: float, limit: int, tags: Sequence[str] | None
    ) -> list[Run]:
        with self._write() as conn:
            rows = self._claim_queued_txn(conn, owner, now, ttl, limit, tags)
        runs = [self._run(r) for r in rows]
        runs.sort(key=lambda run: run.ready_at or 0.0)
        return runs

    def _claim_queued_txn(
        self,
        conn: sqlite3.Connection,
        owner: str,
        now: float,
        ttl: float,
        limit: int,
        tags: Sequence[str] | None,
    ) -> list[tuple[Any, ...]]:
        """The queue part of a claim inside the caller's write transaction; rows decoded by the caller."""
        tag_clause = f" AND tag IN ({', '.join('?' * len(tags))})" if tags else ""
        # One statement: the index walk and the updates share one short write transaction.
        # `randomblob` gives each run its own lease, as `new_lease` does.
        return conn.execute(
            "UPDATE runs SET owner = ?, lease = lower(hex(randomblob(8))), lease_expires_at = ?, status = 'running', "
            "started_at = COALESCE(started_at, ?) "
            f"WHERE id IN (SELECT id FROM runs INDEXED BY runs_queue WHERE {_QUEUED}{self._scope} AND ready_at <= ?"
            f"{tag_clause} ORDER BY ready_at LIMIT ?) RETURNING {_RUN_COLUMNS}",
            (owner, now + ttl, now, *self._scoped, now, *(tags or ()), limit),
        ).fetchall()

    # A claim riding on a finish: (run whose finish claims, owner, clock, ttl, tags), and what it claimed.
    _ride: tuple[str, str, Callable[[], float], float, Sequence[str] | None] | None = None
    _ridden: list[tuple[Any, ...]] | None = None

    def claim_on_finish(
        self,
        run_id: str,
        owner: str,
        now: Callable[[], float],
        ttl: float,
        tags: Sequence[str] | None = None,
    ) -> None:
        """Have `run_id`'s finish (`finish_run` on this connection) also claim the first due queued
        run for `owner`, in its transaction: a worker draining a queue then commits once less per
        run. `now` is read inside that transaction. `take_finish_claim` collects the run."""
        self._ride, self._ridden = (run_id, owner, now, ttl, tags), None

    def take_finish_claim(self) -> list[Run] | None:
        """The run the finish claimed ([] when nothing was due then); None when no finish claimed
        (the run suspended, failed to load, lost its lease). Forgets the request."""
        rows, self._ride, self._ridden = self._ridden, None, None
        return None if rows is None else [self._run(r) for r in rows]

    def _claim_orphans(
        self,
        owner: str,
        now: float,
        ttl: float,
        limit: int,
        tags: Sequence[str] | None,
        dead_owners: Sequence[str],
        stale_leases: Sequence[str] | None,
    ) -> list[Run]:
        """Take over runs whose owner died or whose lease went stale: read outside the write lock (the
        runs in flight, through `runs_leased`), then each taken only if its lease is unchanged."""
        dead_clause = f" OR owner IN ({', '.join('?' * len(dead_owners))})" if dead_owners else ""
        stale = list(stale_leases or ())
        expired_params: list[Any]
        if stale_leases is None:
            expired_clause, expired_params = "lease_expires_at < ?", [now]
        elif stale:
            expired_clause = f"(lease_expires_at < ? AND lease IN ({', '.join('?' * len(stale))}))"
            expired_params = [now, *stale]
        elif dead_owners:
            expired_clause, expired_params = "0", []
        else:
            return []  # no expired lease may be taken and no owner is dead: nothing to look for
        candidates = self._read(
            f"SELECT id, owner, lease, lease_expires_at, tag, ready_at FROM runs INDEXED BY runs_leased WHERE {_LEASED} "
            f"AND ready_at <= ? AND ({expired_clause}{dead_clause}){self._scope}",
            (now, *expired_params, *dead_owners, *self._scoped),
        )
        # Sorted here, not by SQL: these are only the runs in flight, and a temp B-tree is what a claim must not need.
        candidates = sorted(
            (c for c in candidates if not tags or c[4] in tags), key=lambda c: c[5]
        )[:limit]
        if not candidates:
            return []
        runs = []
        with self._write() as conn:
            for run_id, previous, lease, expires, _, _ in candidates:
                # Taken only as it was read: the same owner, lease and expiry (a renewal meanwhile keeps it).
                row = conn.execute(
                    "UPDATE runs SET owner = ?, lease = ?, lease_expires_at = ?, status = 'running', "
                    "started_at = COALESCE(started_at, ?) WHERE id = ? AND owner = ? AND lease IS ? "
                    f"AND lease_expires_at IS ? AND status IN ('pending', 'running') RETURNING {_RUN_COLUMNS}",
                    (owner, new_lease(), now + ttl, now, run_id, previous, lease, expires),
                ).fetchone()
                if row is not None:
                    runs.append((row, previous))
        claimed = []
        for row, previous in runs:
            run = self._run(row)
            if previous != owner:
                run.taken_from = previous
            claimed.append(run)
        return claimed

    def expired_leases(self, now: float) -> list[tuple[str, str, float]]:
        """(run id, lease, expiry) of due runs whose lease has expired by `now`: takeover candidates."""
        rows = self._read(
            f"SELECT id, lease, lease_expires_at FROM runs INDEXED BY runs_leased WHERE {_LEASED} AND ready_at <= ? "
            f"AND lease IS NOT NULL AND lease_expires_at < ?{self._scope}",
            (now, now, *self._scoped),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def owners_on_host(self, host: str) -> list[str]:
        """Owners (host:pid:token) holding runs in flight from `host`, to check for dead pids.

        A key range over `runs_leased`: it reads the runs in flight from that host, nothing else.
        """
        rows = self._read(
            f"SELECT DISTINCT owner FROM runs INDEXED BY runs_leased WHERE {_LEASED} AND owner >= ? AND owner < ?",
            (host + ":", host + ";"),
        )
        return [r[0] for r in rows]

    def next_ready_at(self) -> float | None:
        """When the next unowned run becomes due (None: nothing queued or sleeping)."""
        rows = self._read(
            f"SELECT MIN(ready_at) FROM runs INDEXED BY runs_queue WHERE {_QUEUED}{self._scope} AND ready_at IS NOT NULL",
            self._scoped,
        )
        return rows[0][0] if rows else None

    def renew_leases(self, leases: dict[str, str], now: float, ttl: float) -> set[str]:
        """Extend the leases {run_id: lease} still current; returns the run ids whose lease is not."""
        if not leases:
            return set()
        lost = set()
        with self._write() as conn:
            for run_id, lease in leases.items():
                cur = conn.execute(
                    f"UPDATE runs SET lease_expires_at = ? WHERE id = ? AND {_FENCE_RUN}",
                    (now + ttl, run_id, lease),
                )
                if cur.rowcount != 1:
                    lost.add(run_id)
        return lost

    def set_current_steps(self, steps: dict[str, tuple[str | None, str]]) -> None:
        """Publish {run_id: (step in flight, lease)} for `status`; a stale lease changes nothing."""
        with self._write() as conn:
            conn.executemany(
                f"UPDATE runs SET current_step = ? WHERE id = ? AND {_FENCE_RUN}",
                [(step, run_id, lease) for run_id, (step, lease) in steps.items()],
            )

    def cancel_requests(self, run_ids: Sequence[str]) -> dict[str, str]:
        if not run_ids:
            return {}
        rows = self._read(
            f"SELECT id, cancel_requested FROM runs WHERE cancel_requested IS NOT NULL "
            f"AND id IN ({', '.join('?' * len(run_ids))})",
            tuple(run_ids),
        )
        return dict(rows)

    def suspend_run(
        self,
        run_id: str,
        lease: str,
        waiting: dict[str, Any] | None,
        ready_at: float | None,
        state: dict[str, Any] | None,
        now: float,
        events: Sequence[EventRow],
    ) -> float | None:
        """Release a waiting run. Returns its ready time, which is `now` when a signal it
        waits for, or a cancel request, arrived meanwhile (checked under the write lock,
        so no wake-up is lost between the handler's check and this write)."""
        with self._write() as conn:
            row = conn.execute(
                f"SELECT cancel_requested FROM runs WHERE id = ? AND {_FENCE_RUN}", (run_id, lease)
            ).fetchone()
            if row is None:
                raise LeaseLost(f"run {run_id}: lease lost before suspending")
            names = list((waiting or {}).get("signals") or ())
            child_id = (waiting or {}).get("child_id")
            if row[0] is not None:
                ready_at = now
            elif (
                child_id
                and conn.execute(
                    "SELECT 1 FROM runs WHERE id = ? AND status NOT IN ('pending', 'running')",
                    (child_id,),
                ).fetchone()
            ):
                ready_at = now  # the child ended while we were deciding to wait for it
            elif (
                names
                and conn.execute(
                    f"SELECT 1 FROM signals WHERE run_id = ? AND consumed_seq IS NULL AND name IN ({', '.join('?' * len(names))}) LIMIT 1",
                    (run_id, *names),
                ).fetchone()
            ):
                ready_at = now
            conn.execute(
                "UPDATE runs SET owner = NULL, lease = NULL, lease_expires_at = NULL, ready_at = ?, waiting = ?, state = ?, "
                "current_step = NULL WHERE id = ?",
                (
                    ready_at,
                    None if waiting is None else dumps(waiting),
                    None if state is None else dumps(state),
                    run_id,
                ),
            )
            self._events_txn(conn, run_id, events)
            return ready_at

    def finish_run(
        self,
        run_id: str,
        lease: str,
        fields: dict[str, Any],
        events: Sequence[EventRow],
        step: StepWrite | None = None,
    ) -> bool:
        """Record a run's end if `lease` is still current; False means another owner took over.

        `step`, the run's last step, is recorded in the same transaction (one commit, not two)."""
        try:
            return self._finish(run_id, lease, fields, events, step)
        except LeaseLost:
            return False
        except ConstraintViolated:
            raise StepTaken(
                f"run {run_id}: its last step's position was recorded by another owner"
            ) from None

    def _finish(
        self,
        run_id: str,
        lease: str,
        fields: dict[str, Any],
        events: Sequence[EventRow],
        step: StepWrite | None,
    ) -> bool:
        values = encoded_values("runs", fields)
        ride = self._ride if self._ride is not None and self._ride[0] == run_id else None
        if ride is not None:
            self._ride = None
        with self._write() as conn:
            if step is not None:
                self._step_txn(conn, step, lease)
            cur = conn.execute(
                f"UPDATE runs SET {', '.join(f'{k} = ?' for k in fields)}, lease = NULL WHERE id = ? AND {_FENCE_RUN}",
                (*values, run_id, lease),
            )
            if cur.rowcount != 1:
                raise LeaseLost(f"run {run_id}: lease lost; its end not recorded")  # rolls back
            self._events_txn(conn, run_id, events)
            ridden = None
            if ride is not None:
                _, owner, clock, ttl, tags = ride
                ridden = self._claim_queued_txn(conn, owner, clock(), ttl, 1, tags)
        self._ridden = ridden  # only once committed
        return True

    def wake_parent(self, parent_id: str, now: float) -> None:
        """A child ended: make its parent due if it is suspended waiting for a child."""
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET ready_at = ? WHERE id = ? AND owner IS NULL AND status = 'running' "
                "AND json_extract(waiting, '$.kind') = 'child'",
                (now, parent_id),
            )

    def defer_unloadable(
        self,
        run_id: str,
        lease: str,
        message: str,
        now: float,
        retry_at: float | None,
        events: Sequence[EventRow],
    ) -> None:
        """Release a run whose workflow could not be loaded: due again at `retry_at`, or (None) failed for good."""
        with self._write() as conn:
            self._fence_txn(conn, run_id, lease)
            if retry_at is None:
                error = {"message": message, "step": None, "code": "WORKFLOW_NOT_LOADABLE"}
                conn.execute(
                    "UPDATE runs SET status = 'failed', error = ?, ended_at = ?, owner = NULL, lease = NULL, "
                    "lease_expires_at = NULL, ready_at = NULL, current_step = NULL, load_error = ?, "
                    "load_attempts = load_attempts + 1 WHERE id = ?",
                    (dumps(error), now, message, run_id),
                )
            else:
                conn.execute(
                    "UPDATE runs SET owner = NULL, lease = NULL, lease_expires_at = NULL, ready_at = ?, "
                    "load_error = ?, load_attempts = load_attempts + 1 WHERE id = ?",
                    (retry_at, message, run_id),
                )
            self._events_txn(conn, run_id, events)

    def release_run(self, run_id: str, lease: str) -> None:
        with self._write() as conn:
            conn.execute(
                f"UPDATE runs SET owner = NULL, lease = NULL, lease_expires_at = NULL WHERE id = ? AND {_FENCE_RUN}",
                (run_id, lease),
            )

    def set_run_fields(
        self,
        run_id: str,
        fields: dict[str, Any],
        events: Sequence[EventRow] = (),
        *,
        lease: str | None = None,
    ) -> None:
        """Update chosen run columns (JSON columns are encoded here) and append events.

        With `lease`, only while that lease is current (else `LeaseLost`, nothing written)."""
        assignments = ", ".join(f"{name} = ?" for name in fields)
        values = encoded_values("runs", fields)
        with self._write() as conn:
            if lease is not None:
                self._fence_txn(conn, run_id, lease)
            if fields:
                conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*values, run_id))
            self._events_txn(conn, run_id, events)

    def request_cancel(self, run_id: str, reason: str, now: float) -> Run | None:
        """Mark a run for cancellation and make it due now; None when it already ended."""
        with self._write() as conn:
            run = self._run_txn(conn, run_id)
            if run is None:
                return None
            if run.status not in _ACTIVE:
                return run
            conn.execute(
                "UPDATE runs SET cancel_requested = ?, ready_at = ? WHERE id = ?",
                (reason, now, run_id),
            )
            conn.execute(
                _INSERT_EVENT, (run_id, now, "cancel_requested", None, dumps({"reason": reason}))
            )
            run.cancel_requested = reason
            return run

    def delete_run(self, run_id: str) -> None:
        with self._write() as conn:
            for table in ("steps", "attempts", "events", "signals", "hooks", "feed"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def count_runs(
        self, *, tag: str | None = None, status: str | None = None, search: str | None = None
    ) -> int:
        where, params = _run_filter(namespace=self.namespace, tag=tag, status=status, search=search)
        return int(self._read(f"SELECT COUNT(*) FROM runs {where}", params)[0][0])

    def run_counts(self) -> dict[str, dict[str, int]]:
        """How many runs each workflow has, by status (for workflow listings)."""
        counts: dict[str, dict[str, int]] = {}
        for tag, status, number in self._read(
            f"SELECT tag, status, COUNT(*) FROM runs WHERE 1{self._scope} GROUP BY tag, status",
            self._scoped,
        ):
            counts.setdefault(tag, {})[status] = number
        return counts

    def set_metadata(self, run_id: str, metadata: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET metadata = ? WHERE id = ?",
                (dumps(metadata) if metadata else None, run_id),
            )

    # -- the change feed (tailed by `serve`) ----------------------------------

    def enable_feed(self) -> None:
        """Install the triggers that fill the change feed (idempotent); from now on every writer
        of this store, in any process, records its changes there."""
        with self._write() as conn:
            for statement in FEED_TRIGGERS:
                conn.execute(statement)

    def feed_position(self) -> int:
        """The newest feed id: a cursor that skips everything written so far."""
        return int(self._read("SELECT COALESCE(MAX(id), 0) FROM feed")[0][0])

    def read_feed(
        self, after: int, *, run_id: str | None = None, tag: str | None = None, limit: int = 500
    ) -> list[FeedRow]:
        """Feed rows after the cursor `after`, oldest first, with what each names: the status,
        the event (ts, type, step, data) or the completed step (tag, output, timings, attempts).
        `output` is the run's output, for a `workflow_completed` event."""
        sql = (
            "SELECT f.id, f.run_id, r.tag, f.kind, f.status, f.ts, e.type, e.step, e.data, "
            "s.tag, s.output, s.started_at, s.ended_at, s.attempts, "
            "CASE WHEN e.type = 'workflow_completed' THEN r.output END "
            "FROM feed f JOIN runs r ON r.id = f.run_id "
            "LEFT JOIN events e ON f.kind = 'event' AND e.id = f.ref "
            "LEFT JOIN steps s ON f.kind = 'step' AND s.run_id = f.run_id AND s.seq = f.ref "
            "WHERE f.id > ?"
        )
        params: list[Any] = [after]
        if run_id is not None:
            sql += " AND f.run_id = ?"
            params.append(run_id)
        if tag is not None:
            sql += " AND r.tag = ?"
            params.append(tag)
        if self.namespace is not None:
            sql += " AND r.namespace = ?"
            params.append(self.namespace)
        sql += " ORDER BY f.id LIMIT ?"
        params.append(limit)
        return [
            FeedRow(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
                _loads(r[8]) or {},
                r[9],
                _loads(r[10]),
                r[11],
                r[12],
                r[13],
                _loads(r[14]),
            )
            for r in self._read(sql, params)
        ]

    @staticmethod
    def _run_values(run: Run) -> tuple[Any, ...]:
        def j(value: Any) -> str | None:
            return None if value is None else dumps(value)

        return (
            run.id,
            run.tag,
            run.version,
            str(run.status),
            run.env,
            dumps(run.input),
            j(run.output),
            j(run.error),
            run.failed_step,
            j(run.rollback_result),
            j(run.context or None),
            j(run.state or None),
            run.idempotency_key,
            run.parent_id,
            run.replayed_from,
            run.restarted_from,
            run.resumed_from,
            j(run.lineage or None),
            j(run.options or None),
            run.created_at,
            run.started_at,
            run.ended_at,
            run.deadline,
            run.owner,
            run.lease_expires_at,
            run.ready_at,
            j(run.waiting),
            run.cancel_requested,
            run.current_step,
            run.phase,
            run.schedule_id,
            j(run.metadata or None),
            run.lease,
            run.load_error,
            run.load_attempts,
        )

    @staticmethod
    def _run(row: tuple[Any, ...]) -> Run:
        (
            id_,
            tag,
            version,
            status,
            env,
            input_,
            output,
            error,
            failed_step,
            rollback_result,
            context,
            state,
            idem,
            parent_id,
            replayed_from,
            restarted_from,
            resumed_from,
            lineage,
            options,
            created_at,
            started_at,
            ended_at,
            deadline,
            owner,
            lease,
            ready_at,
            waiting,
            cancel,
            current_step,
            phase,
            schedule_id,
            metadata,
            fence,
            load_error,
            load_attempts,
        ) = row
        return Run(
            id=id_,
            tag=tag,
            version=version,
            status=RunStatus(status),
            env=env,
            input=_loads(input_),
            output=_loads(output),
            error=_loads(error),
            failed_step=failed_step,
            rollback_result=_loads(rollback_result),
            context=_loads(context) or {},
            state=_loads(state) or {},
            idempotency_key=idem,
            parent_id=parent_id,
            replayed_from=replayed_from,
            restarted_from=restarted_from,
            resumed_from=resumed_from,
            lineage=_loads(lineage) or {},
            options=_loads(options) or {},
            created_at=created_at,
            started_at=started_at,
            ended_at=ended_at,
            deadline=deadline,
            owner=owner,
            lease_expires_at=lease,
            ready_at=ready_at,
            waiting=_loads(waiting),
            cancel_requested=cancel,
            current_step=current_step,
            phase=phase,
            schedule_id=schedule_id,
            metadata=_loads(metadata) or {},
            lease=fence,
            load_error=load_error,
            load_attempts=load_attempts,
        )

    # -- journal ----------------------------------------------------------

    def load_journal(self, run_id: str) -> dict[int, StepRecord]:
        rows = self._read(
            f"SELECT {_STEP_COLUMNS} FROM steps WHERE run_id = ? ORDER BY seq", (run_id,)
        )
        return {r[1]: self._step(r) for r in rows}

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
        """The hot path: one journal row, its events and (if changed) the run state, in one transaction.

        With `lease` the row is inserted only while that lease is current
        (`LeaseLost` otherwise, nothing written); and if another owner already
        recorded this position, the primary key refuses it.
        `outbox` messages are stored in the same transaction (the transactional outbox).
        """
        conn = self.conn
        if not events and state is None and not outbox:
            # A lone statement is its own transaction: no BEGIN/COMMIT round trips on the common path.
            sql, params = self._step_insert(record, output_json, lease)
            with self._gated():
                try:
                    cur = retry(lambda: conn.execute(sql, params))
                except sqlite3.IntegrityError:
                    raise StepTaken(
                        f"run {record.run_id}: position {record.seq} already recorded by another owner"
                    ) from None
                except sqlite3.Error as exc:
                    raise _translate(exc, self.path) from None
            if cur.rowcount != 1:
                raise LeaseLost(
                    f"run {record.run_id}: lease lost; step {record.tag!r} not recorded"
                )
            return
        try:
            with self._write() as txn:
                self._step_txn(txn, StepWrite(record, events, state, output_json, outbox), lease)
        except ConstraintViolated:
            raise StepTaken(
                f"run {record.run_id}: position {record.seq} already recorded by another owner"
            ) from None

    def _step_txn(self, txn: sqlite3.Connection, step: StepWrite, lease: str | None) -> None:
        """Inside a write transaction: `commit_step`'s writes (`LeaseLost` when fenced out)."""
        record = step.record
        if txn.execute(*self._step_insert(record, step.output_json, lease)).rowcount != 1:
            raise LeaseLost(f"run {record.run_id}: lease lost; step {record.tag!r} not recorded")
        run_id = record.run_id
        for ts, type_, tag, data in step.events:
            txn.execute(
                _INSERT_EVENT, (run_id, ts, type_, tag, None if data is None else dumps(data))
            )
        if step.state is not None:
            txn.execute("UPDATE runs SET state = ? WHERE id = ?", (dumps(step.state), run_id))
        if step.outbox:
            self._outbox_txn(txn, step.outbox)

    def update_op(
        self,
        run_id: str,
        seq: int,
        fields: dict[str, Any],
        events: Sequence[EventRow] = (),
        run_fields: dict[str, Any] | None = None,
        *,
        lease: str | None = None,
    ) -> None:
        """Change a journal row (a wait that completed, a rollback status) with its events (fenced by `lease`)."""
        values = encoded_values("steps", fields)
        with self._write() as conn:
            if lease is not None:
                self._fence_txn(conn, run_id, lease)
            conn.execute(
                f"UPDATE steps SET {', '.join(f'{k} = ?' for k in fields)} WHERE run_id = ? AND seq = ?",
                (*values, run_id, seq),
            )
            if run_fields:
                conn.execute(
                    f"UPDATE runs SET {', '.join(f'{k} = ?' for k in run_fields)} WHERE id = ?",
                    (*run_fields.values(), run_id),
                )
            self._events_txn(conn, run_id, events)

    def record_attempt(
        self, attempt: Attempt, events: Sequence[EventRow], *, lease: str | None = None
    ) -> None:
        with self._write() as conn:
            if lease is not None:
                self._fence_txn(conn, attempt.run_id, lease)
            conn.execute(
                "INSERT OR REPLACE INTO attempts (run_id, seq, attempt, started_at, duration_ms, error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    attempt.run_id,
                    attempt.seq,
                    attempt.attempt,
                    attempt.started_at,
                    attempt.duration_ms,
                    None if attempt.error is None else dumps(attempt.error),
                ),
            )
            self._events_txn(conn, attempt.run_id, events)

    def attempts(self, run_id: str, seq: int) -> list[Attempt]:
        rows = self._read(
            "SELECT run_id, seq, attempt, started_at, duration_ms, error FROM attempts "
            "WHERE run_id = ? AND seq = ? ORDER BY attempt",
            (run_id, seq),
        )
        return [Attempt(r[0], r[1], r[2], r[3], r[4], _loads(r[5])) for r in rows]

    def delete_ops(self, run_id: str, seqs: Sequence[int]) -> None:
        if not seqs:
            return
        with self._write() as conn:
            self._drop_ops_txn(conn, run_id, seqs)

    def _step_insert(
        self, record: StepRecord, output_json: str | None, lease: str | None
    ) -> tuple[str, tuple[Any, ...]]:
        """The INSERT of a journal row, fenced by `lease` when given."""
        values = self._step_values(record, output_json)
        if lease is None:
            return _INSERT_STEP, values
        return _INSERT_STEP_FENCED, (*values, record.run_id, lease)

    @staticmethod
    def _step_values(r: StepRecord, output_json: str | None = None) -> tuple[Any, ...]:
        """A journal row's columns; `output_json` is the output already encoded (the step's hot
        path encodes it once, to check it is JSON)."""
        return (
            r.run_id,
            r.seq,
            str(r.kind),
            r.tag,
            str(r.status),
            None if r.input is None else dumps(r.input),
            output_json
            if output_json is not None
            else None
            if r.output is None
            else dumps(r.output),
            None if r.error is None else dumps(r.error),
            r.attempts,
            r.started_at,
            r.ended_at,
            dumps(r.options) if r.options else None,
            int(r.has_rollback),
            int(r.critical),
            r.rollback_status,
            r.rollback_error,
            r.wake_at,
            r.source,
        )

    @staticmethod
    def _step(row: tuple[Any, ...]) -> StepRecord:
        return StepRecord(
            run_id=row[0],
            seq=row[1],
            kind=OpKind(row[2]),
            tag=row[3],
            status=StepStatus(row[4]),
            input=_loads(row[5]),
            output=_loads(row[6]),
            error=_loads(row[7]),
            attempts=row[8],
            started_at=row[9],
            ended_at=row[10],
            options=_loads(row[11]) or {},
            has_rollback=bool(row[12]),
            critical=bool(row[13]),
            rollback_status=row[14],
            rollback_error=row[15],
            wake_at=row[16],
            source=row[17],
        )

    # -- events -----------------------------------------------------------

    def append_events(self, run_id: str, events: Sequence[EventRow]) -> None:
        with self._write() as conn:
            self._events_txn(conn, run_id, events)

    def events(
        self,
        run_id: str,
        *,
        after_id: int = 0,
        types: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        sql = "SELECT id, run_id, ts, type, step, data FROM events WHERE run_id = ? AND id > ?"
        params: list[Any] = [run_id, after_id]
        if types:
            sql += f" AND type IN ({', '.join('?' * len(types))})"
            params.extend(types)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [
            Event(r[0], r[1], r[2], r[3], r[4], _loads(r[5]) or {}) for r in self._read(sql, params)
        ]

    def count_events(self, run_id: str) -> int:
        return int(self._read("SELECT COUNT(*) FROM events WHERE run_id = ?", (run_id,))[0][0])

    # -- signals and hooks ---------------------------------------------

    def add_signal(self, run_id: str, name: str, payload: Any, now: float) -> Run | None:
        """Buffer a signal; wake the run if it waits for this name. None if the run ended."""
        with self._write() as conn:
            run = self._run_txn(conn, run_id)
            if run is None:
                return None
            if run.status not in _ACTIVE:
                return run
            conn.execute(
                "INSERT INTO signals (run_id, name, payload, created_at) VALUES (?, ?, ?, ?)",
                (run_id, name, dumps(payload), now),
            )
            waiting = run.waiting or {}
            if name in waiting.get("signals", ()):
                conn.execute("UPDATE runs SET ready_at = ? WHERE id = ?", (now, run_id))
            elif not name.startswith("hook:"):
                # Nothing waits for it now: history shows it arrived and waits in the buffer.
                conn.execute(
                    _INSERT_EVENT,
                    (
                        run_id,
                        now,
                        "signal_buffered",
                        None,
                        dumps({"signal": name, "payload": payload}),
                    ),
                )
            return run

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
    ) -> Signal | None:
        """Deliver the oldest buffered signal among `names` that arrived by `deadline` to journal
        position `seq`, atomically."""
        late = "" if deadline is None else " AND created_at <= ?"
        with self._write() as conn:
            if lease is not None:
                self._fence_txn(conn, run_id, lease)
            row = conn.execute(
                f"SELECT id, run_id, name, payload, created_at, consumed_seq FROM signals "
                f"WHERE run_id = ? AND consumed_seq IS NULL AND name IN ({', '.join('?' * len(names))}){late} "
                "ORDER BY id LIMIT 1",
                (run_id, *names, *(() if deadline is None else (deadline,))),
            ).fetchone()
            if row is None:
                return None
            signal = Signal(row[0], row[1], row[2], _loads(row[3]), row[4], seq)
            conn.execute("UPDATE signals SET consumed_seq = ? WHERE id = ?", (seq, signal.id))
            output = {"signal": signal.name, "payload": signal.payload}
            conn.execute(
                "UPDATE steps SET status = 'completed', output = ?, ended_at = ? WHERE run_id = ? AND seq = ?",
                (dumps(output), now, run_id, seq),
            )
            data = {"signal": hook or signal.name, "payload": signal.payload}
            conn.execute(_INSERT_EVENT, (run_id, now, event_type, None, dumps(data)))
            return signal

    def expire_wait(
        self,
        run_id: str,
        seq: int,
        names: Sequence[str],
        deadline: float,
        now: float,
        events: Sequence[EventRow],
    ) -> list[Signal]:
        """Fail the signal wait at `seq` (its deadline passed) with `events`, and record each signal among
        `names` that arrived after the deadline as refused by this wait (it stays buffered). Returns those."""
        with self._write() as conn:
            conn.execute(
                "UPDATE steps SET status = 'failed', ended_at = ?, error = ? WHERE run_id = ? AND seq = ?",
                (now, dumps({"message": "timed out", "code": "SIGNAL_TIMEOUT"}), run_id, seq),
            )
            self._events_txn(conn, run_id, events)
            rows = conn.execute(
                f"SELECT id, run_id, name, payload, created_at, consumed_seq FROM signals WHERE run_id = ? "
                f"AND consumed_seq IS NULL AND created_at > ? AND name IN ({', '.join('?' * len(names))}) ORDER BY id",
                (run_id, deadline, *names),
            ).fetchall()
            late = [Signal(r[0], r[1], r[2], _loads(r[3]), r[4], r[5]) for r in rows]
            for signal in late:
                data = {
                    "signal": signal.name,
                    "payload": signal.payload,
                    "arrived_at": signal.created_at,
                    "deadline": deadline,
                    "reason": "arrived after the wait's deadline; the timeout won",
                }
                conn.execute(_INSERT_EVENT, (run_id, now, "signal_refused", None, dumps(data)))
            return late

    def signals(self, run_id: str) -> list[Signal]:
        rows = self._read(
            "SELECT id, run_id, name, payload, created_at, consumed_seq FROM signals WHERE run_id = ? ORDER BY id",
            (run_id,),
        )
        return [Signal(r[0], r[1], r[2], _loads(r[3]), r[4], r[5]) for r in rows]

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
    ) -> None:
        with self._write() as conn:
            if lease is not None:
                self._fence_txn(conn, run_id, lease)
            conn.execute(
                "INSERT OR IGNORE INTO hooks (token, run_id, seq, name, data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (token, run_id, seq, name, dumps(data), now),
            )

    def open_hooks(self, run_id: str) -> list[dict[str, Any]]:
        """A run's hooks not used yet, oldest first."""
        rows = self._read(
            "SELECT token, name, data, created_at FROM hooks WHERE run_id = ? AND used_at IS NULL ORDER BY created_at",
            (run_id,),
        )
        return [
            {"token": r[0], "name": r[1], "data": _loads(r[2]), "created_at": r[3]} for r in rows
        ]

    def deliver_hook(
        self, token: str, payload: Any, now: float
    ) -> tuple[Run | None, str, str | None]:
        """Use a hook token and buffer its signal in one transaction: a crash burns no token.

        Returns (run, hook name, refusal); a refusal (unknown or used token,
        ended run) writes nothing.
        """
        with self._write() as conn:
            row = conn.execute(
                "SELECT run_id, name, used_at FROM hooks WHERE token = ?", (token,)
            ).fetchone()
            if row is None:
                return None, "", "unknown hook token"
            run_id, name, used_at = row
            if used_at is not None:
                return None, name, "hook token was already used"
            found = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?{self._scope}",
                (run_id, *self._scoped),
            ).fetchone()
            if found is None:  # deleted, or another project's run: its token is not ours to use
                return None, "", "unknown hook token"
            run = self._run(found)
            if run.status not in _ACTIVE:
                return run, name, f"run {run_id} already {run.status}; hook {name!r} refused"
            signal_name = "hook:" + token
            conn.execute(
                "INSERT INTO signals (run_id, name, payload, created_at) VALUES (?, ?, ?, ?)",
                (run_id, signal_name, dumps(payload), now),
            )
            if signal_name in (run.waiting or {}).get("signals", ()):
                conn.execute("UPDATE runs SET ready_at = ? WHERE id = ?", (now, run_id))
            conn.execute("UPDATE hooks SET used_at = ? WHERE token = ?", (now, token))
            return run, name, None

    # -- lineage: resume from a step or checkpoint (issue 7) --------------------

    def rewind_run(
        self,
        run_id: str,
        seqs: Sequence[int],
        expect: tuple[str, str | None],
        fields: dict[str, Any],
        events: Sequence[EventRow],
        *,
        reset_rollbacks: Sequence[int] = (),
    ) -> bool:
        """Drop journal rows `seqs` (their attempts too; signals they consumed become pending again),
        clear the rollback outcome of rows `reset_rollbacks` (so their compensation runs again)
        and set run columns, in one transaction, if the run still has `expect` = (status, owner).
        False when it changed meanwhile; then nothing is written."""
        if "owner" in fields and "lease" not in fields:
            fields = {
                **fields,
                "lease": None,
            }  # a released run keeps no token its old owner could still write with
        with self._write() as conn:
            row = conn.execute("SELECT status, owner FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None or (row[0], row[1]) != expect:
                return False
            if seqs:
                self._drop_ops_txn(conn, run_id, seqs)
            if reset_rollbacks:
                marks = ", ".join("?" * len(reset_rollbacks))
                conn.execute(
                    f"UPDATE steps SET rollback_status = NULL, rollback_error = NULL WHERE run_id = ? AND seq IN ({marks})",
                    (run_id, *reset_rollbacks),
                )
            values = encoded_values("runs", fields)
            conn.execute(
                f"UPDATE runs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                (*values, run_id),
            )
            self._events_txn(conn, run_id, events)
            return True


def _run_filter(*, search: str | None = None, **equal: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause of a run listing: columns equal to the given values, and `search` as
    a case-insensitive substring of the run id, its input JSON or its metadata JSON."""
    clauses, params = [], []
    for column, value in equal.items():
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if search:
        needle = search.lower()  # a plain substring: no character is a wildcard
        clauses.append(
            "(instr(lower(id), ?) > 0 OR instr(lower(input), ?) > 0 OR instr(lower(COALESCE(metadata, '')), ?) > 0)"
        )
        params.extend([needle] * 3)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params
