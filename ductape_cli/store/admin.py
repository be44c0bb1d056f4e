"""Looking after a store as a whole: its schema version, what it holds, and copying it to another backend.

`ductape store migrate|info|copy` call these through `engine/store_admin.py`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ductape_cli.errors import InvalidInput, StoreError
from ductape_cli.store import is_postgres, open_store
from ductape_cli.store.migrations import MIGRATIONS
from ductape_cli.store.protocol import Store

COPY_BATCH = 200
_COUNTED = ("runs", "steps", "events", "signals", "schedules", "definitions", "topic_messages")


def schema_before_opening(location: str) -> int:
    """How many migrations the store at `location` has applied, without applying any (0: new)."""
    if is_postgres(location):
        from ductape_cli.store.postgres import PostgresStore

        return PostgresStore(location, migrate=False).schema_version()[0]
    if location == ":memory:" or not Path(location).exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{location}?mode=ro", uri=True)
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read store {location}: {exc}") from None


def describe(store: Store) -> dict[str, Any]:
    """Backend, schema version and row counts of an open store."""
    version, backend_version = store.schema_version()
    counts = {table: store.count_rows(table) for table in _COUNTED}
    return {
        "backend": store.backend,
        "schema_version": version,
        "schema_latest": len(MIGRATIONS),
        "backend_schema_version": backend_version,
        "counts": counts,
        "runs_by_status": _by_status(store),
    }


def _by_status(store: Store) -> dict[str, int]:
    totals: dict[str, int] = {}
    for statuses in store.run_counts().values():
        for status, number in statuses.items():
            totals[status] = totals.get(status, 0) + number
    return dict(sorted(totals.items()))


def copy(source: str, target: str, progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Copy every run (with its journal, events, signals, hooks) and every definition, schedule,
    topic log, consumer offset and outbox message, of every project namespace, from `source` to
    `target`. Rows the target already has are left as they are, so an interrupted copy can simply
    be run again. Stop workers on `source` first."""
    if source == target:
        raise InvalidInput("--from and --to name the same store")
    src, dst = open_store(source), open_store(target)  # unscoped: every namespace
    try:
        copied = {"runs": 0, "skipped_runs": 0}
        offset = 0
        while page := [
            run.id for run in src.list_runs(limit=COPY_BATCH, offset=offset, full=False)
        ]:
            offset += len(page)
            present = dst.existing_run_ids(page)
            fresh = [run_id for run_id in page if run_id not in present]
            dst.import_rows([src.export_rows(run_id) for run_id in fresh], [])
            copied["runs"] += len(fresh)
            copied["skipped_runs"] += len(present)
            if progress is not None:
                progress(copied["runs"])
        for table, key in _SIDE_TABLES.items():
            copied[key] = _copy_table(src, dst, table)
        return copied
    finally:
        src.close()
        dst.close()


# Tables copied row by row, columns as they are (offsets, namespaces and times kept); the name in the report.
_SIDE_TABLES = {
    "definitions": "definitions",
    "schedules": "schedules",
    "topic_messages": "topic_messages",
    "consumer_offsets": "consumer_offsets",
    "outbox": "outbox_messages",
}


def _copy_table(src: Any, dst: Any, table: str) -> int:
    """Insert `src`'s rows of `table` that `dst` lacks (by primary key); returns how many were new."""
    columns = sorted(_columns(src, table) & _columns(dst, table) - {"rowid"})
    order = "rowid" if table == "definitions" else ", ".join(columns)
    rows = src._read(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")
    added = 0
    with dst._write() as conn:
        for row in rows:
            cur = conn.execute(
                f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                row,
            )
            added += max(cur.rowcount, 0)
    return added


def _columns(store: Any, table: str) -> set[str]:
    return {row[1] for row in store._read(f"PRAGMA table_info({table})")}
