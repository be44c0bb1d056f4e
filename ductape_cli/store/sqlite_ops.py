"""Operating a store: retention (prune), export and import of runs, backup, vacuum, queue figures.

A mixin of `SqliteStore`, kept apart from the hot-path methods. Every batch
of a prune is one short `BEGIN IMMEDIATE` transaction that picks its runs and
deletes them, so workers writing meanwhile wait at most one batch, and a run
that a `resume` reopens between batches is never picked.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ductape_cli.errors import InvalidInput, StoreError
from ductape_cli.store.encoding import JSON_COLUMNS, dumps
from ductape_cli.store.encoding import loads as _loads

# Rows that belong to a run and go with it; topic messages are a log of their own and stay.
RUN_TABLES = ("steps", "attempts", "events", "signals", "hooks")
_TERMINAL = ("completed", "failed", "rolled_back", "cancelled")


class OpsMixin:
    conn: sqlite3.Connection
    _patient: Any
    path: str
    namespace: str | None

    # -- retention ------------------------------------------------------------------------

    def prune_batch(
        self,
        *,
        ended_before: float,
        statuses: Sequence[str] | None,
        tags: Sequence[str] | None,
        limit: int,
        dry_run: bool = False,
        after_id: str = "",
    ) -> list[tuple[str, str, str]]:
        """Delete (or with `dry_run` only list) up to `limit` prunable runs; returns (id, tag, status) of each.

        Prunable: ended before `ended_before`, in `statuses` (default: any end status) and
        `tags`; never a run with an unfinished child, never a run whose parent has not
        ended (the parent may still read it). `after_id` pages a dry run.
        """
        wanted = [s for s in (statuses or _TERMINAL) if s in _TERMINAL]
        clauses = [f"r.status IN ({', '.join('?' * len(wanted))})", "r.ended_at < ?", "r.id > ?"]
        params: list[Any] = [*wanted, ended_before, after_id]
        if tags:
            clauses.append(f"r.tag IN ({', '.join('?' * len(tags))})")
            params.extend(tags)
        active = "('pending', 'running')"
        sql = (
            "SELECT r.id, r.tag, r.status FROM runs r WHERE "
            + " AND ".join(clauses)
            + f" AND NOT EXISTS (SELECT 1 FROM runs c WHERE c.parent_id = r.id AND c.status IN {active})"
            + f" AND (r.parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM runs p WHERE p.id = r.parent_id AND p.status IN {active}))"
            + " ORDER BY r.id LIMIT ?"
        )
        params.append(limit)
        if dry_run:
            return [(r[0], r[1], r[2]) for r in self._ops_read(sql, params)]
        with self._write() as conn:  # type: ignore[attr-defined]
            rows = [(r[0], r[1], r[2]) for r in conn.execute(sql, params).fetchall()]
            ids = [r[0] for r in rows]
            if ids:
                marks = ", ".join("?" * len(ids))
                for table in RUN_TABLES:
                    conn.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", ids)
                conn.execute(f"DELETE FROM runs WHERE id IN ({marks})", ids)
            return rows

    # -- export and import ----------------------------------------------------------------

    def export_rows(self, run_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every stored row of one run, column by column (JSON columns decoded), for `ductape export`."""
        out: dict[str, list[dict[str, Any]]] = {}
        for table, order in (
            ("runs", "id"),
            ("steps", "seq"),
            ("attempts", "seq, attempt"),
            ("events", "id"),
            ("signals", "id"),
            ("hooks", "created_at, token"),
        ):
            key = "id" if table == "runs" else "run_id"
            cur = self.conn.execute(
                f"SELECT * FROM {table} WHERE {key} = ? ORDER BY {order}", (run_id,)
            )
            names = [d[0] for d in cur.description]
            out[table] = [
                _decoded(table, dict(zip(names, row, strict=True))) for row in cur.fetchall()
            ]
        return out

    def existing_run_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            rows = self._ops_read(
                f"SELECT id FROM runs WHERE id IN ({', '.join('?' * len(chunk))})", chunk
            )
            found.update(r[0] for r in rows)
        return found

    def import_rows(
        self, runs: Sequence[dict[str, list[dict[str, Any]]]], definitions: Sequence[dict[str, Any]]
    ) -> None:
        """Insert exported runs (and the definition versions they ran) in one transaction.

        A run id that exists refuses the whole import (nothing is written); a
        definition version already stored is kept as it is, and an imported one
        never becomes a workflow's latest version. Runs and definitions belong to
        this store's project (a store opened for no project keeps each run's own).
        """
        namespace = self.namespace
        with self._write() as conn:  # type: ignore[attr-defined]
            for definition in definitions:
                conn.execute(
                    "INSERT OR IGNORE INTO definitions (namespace, tag, version, name, source_path, schema, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        namespace or "",
                        definition["tag"],
                        definition["version"],
                        definition.get("name"),
                        definition.get("source_path"),
                        dumps(definition["schema"]),
                        definition.get("created_at") or 0.0,
                    ),
                )
            known = {
                t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")}
                for t in ("runs", *RUN_TABLES)
            }
            for bundle in runs:
                for table in ("runs", *RUN_TABLES):
                    for row in bundle.get(table, []):
                        unknown = sorted(set(row) - known[table])
                        if (
                            unknown
                        ):  # column names come from a file: only this store's own are ever used
                            raise InvalidInput(
                                f"cannot import: unknown {table} column(s) {', '.join(unknown)}"
                            )
                        if table == "events":
                            row = {
                                k: v for k, v in row.items() if k != "id"
                            }  # fresh ids keep this store's order
                        if table == "signals":
                            row = {k: v for k, v in row.items() if k != "id"}
                        if table == "runs" and namespace is not None:
                            row = {**row, "namespace": namespace}
                        encoded = _encoded(table, row)
                        columns = ", ".join(encoded)
                        verb = "INSERT OR IGNORE" if table == "hooks" else "INSERT"
                        try:
                            conn.execute(
                                f"{verb} INTO {table} ({columns}) VALUES ({', '.join('?' * len(encoded))})",
                                list(encoded.values()),
                            )
                        except sqlite3.IntegrityError:
                            raise InvalidInput(
                                f"cannot import: a {table[:-1]} row of run {row.get('run_id') or row.get('id')} already exists"
                            ) from None
                        except sqlite3.OperationalError as exc:
                            raise InvalidInput(
                                f"cannot import: the file does not match this store's {table} table ({exc})"
                            ) from None

    # -- maintenance ------------------------------------------------------------------------

    def backup(self, target: str | Path) -> int:
        """Copy the store to `target` with SQLite's online backup API: consistent while others write.

        Returns the size in bytes. The copy is written beside `target` and renamed into
        place, so a failed backup never leaves a half-written file under that name.
        """
        target = Path(target)
        partial = target.with_name(target.name + ".partial")
        try:
            destination = sqlite3.connect(str(partial))
            try:
                # All pages in one step: a single read transaction, so the copy is one snapshot.
                # In WAL mode writers go on meanwhile (a stepwise copy would restart on every write).
                with self._patient():
                    self.conn.backup(destination, pages=-1)
            finally:
                destination.close()
            partial.replace(target)
        except (sqlite3.Error, OSError) as exc:
            partial.unlink(missing_ok=True)
            raise StoreError(f"backup of {self.path} to {target} failed: {exc}") from None
        return target.stat().st_size

    def vacuum(self) -> tuple[int, int]:
        """Rebuild the file to return free pages to the disk; returns (bytes before, bytes after)."""
        before = self._size()
        try:
            with self._patient():
                self.conn.execute("VACUUM")
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise StoreError(f"vacuum of {self.path} failed: {exc}") from None
        return before, self._size()

    def _size(self) -> int:
        page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        return int(page_size * pages)

    # -- figures for metrics ----------------------------------------------------------------

    def queue_stats(self, now: float) -> dict[str, float]:
        """Unfinished runs by state: queued (due, nobody holds it), executing, waiting; and the oldest of each."""
        row = self._ops_read(
            "SELECT "
            "SUM(CASE WHEN ready_at <= ?1 AND (owner IS NULL OR lease_expires_at < ?1) THEN 1 ELSE 0 END), "
            "MIN(CASE WHEN ready_at <= ?1 AND (owner IS NULL OR lease_expires_at < ?1) THEN ready_at END), "
            "SUM(CASE WHEN owner IS NOT NULL AND lease_expires_at >= ?1 THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN owner IS NULL AND (ready_at IS NULL OR ready_at > ?1) THEN 1 ELSE 0 END), "
            "MIN(CASE WHEN owner IS NULL AND (ready_at IS NULL OR ready_at > ?1) THEN COALESCE(started_at, created_at) END) "
            "FROM runs WHERE status IN ('pending', 'running')",
            (now,),
        )[0]
        return queue_stats(row, now)

    def _ops_read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._read(sql, params)  # type: ignore[attr-defined]


# JSON columns decoded on export and encoded on import. A run's `metadata` travels as the text it
# is stored as, so files exported before it was listed here import unchanged.
_JSON_COLUMNS = {**JSON_COLUMNS, "runs": JSON_COLUMNS["runs"] - {"metadata"}}


def _decoded(table: str, row: dict[str, Any]) -> dict[str, Any]:
    for column in _JSON_COLUMNS[table] & row.keys():
        row[column] = _loads(row[column])
    return row


def _encoded(table: str, row: dict[str, Any]) -> dict[str, Any]:
    json_columns = _JSON_COLUMNS[table]
    encoded = {k: (dumps(v) if k in json_columns and v is not None else v) for k, v in row.items()}
    if table == "runs" and "input" in row:
        encoded["input"] = dumps(row["input"])  # NOT NULL: a null input is the JSON text "null"
    return encoded


def queue_stats(row: Sequence[Any], now: float) -> dict[str, float]:
    """The metrics' queue figures from one row: (queued, oldest due, executing, waiting, oldest waiting)."""
    queued, oldest_due, executing, waiting, oldest_waiting = row
    return {
        "queued": float(queued or 0),
        "executing": float(executing or 0),
        "waiting": float(waiting or 0),
        "oldest_queued_seconds": max(0.0, now - oldest_due) if oldest_due is not None else 0.0,
        "oldest_waiting_seconds": max(0.0, now - oldest_waiting)
        if oldest_waiting is not None
        else 0.0,
    }
