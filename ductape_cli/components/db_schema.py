"""A database's `schema = ...`: applied once per database, remembered there by its sha256.

The first process to use `[databases.X]` takes a lock in that database, runs
the statements and records ``(X, sha256)`` in a `_ductape_schema` table, in one
transaction. Later processes see the row and run nothing, so a plain
``CREATE TABLE t`` works on the second `ductape run` too. When the configured
schema no longer matches the recorded hash, ductape does not re-run it (that
could drop or duplicate data): it logs a warning once per process saying so,
and you apply the change yourself.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from typing import Any

from ductape_cli.components.errors import DatabaseError

TABLE = "_ductape_schema"
_CREATE = f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
log = logging.getLogger("ductape.components")
_checked: set[tuple[str, str, str]] = (
    set()
)  # (database key, component name, sha256) settled in this process
_lock = threading.Lock()


def statements(ddl: str | list[str] | None) -> list[str]:
    if not ddl:
        return []
    return [ddl] if isinstance(ddl, str) else list(ddl)


def digest(ddl: list[str]) -> str:
    return hashlib.sha256("\n;\n".join(ddl).encode()).hexdigest()


def ensure_sqlite(
    conn: sqlite3.Connection, key: str, name: str, ddl: str | list[str] | None
) -> None:
    """Apply `ddl` to the SQLite connection unless this database already records it."""
    parts = statements(ddl)
    if not parts:
        return
    sha = digest(parts)
    if key == ":memory:":  # a fresh database on every connection
        _run(name, lambda: [conn.execute(s) for s in split_sqlite(parts)])
        return
    with _lock:
        if (key, name, sha) in _checked:
            return
        conn.execute("BEGIN IMMEDIATE")  # one process applies it; the others wait, then see the row
        try:
            conn.execute(_CREATE)
            row = conn.execute(
                f"SELECT sha256, applied_at FROM {TABLE} WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                _run(name, lambda: [conn.execute(s) for s in split_sqlite(parts)])
                conn.execute(
                    f"INSERT INTO {TABLE} (name, sha256, applied_at) VALUES (?, ?, ?)",
                    (name, sha, time.time()),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        _settle(key, name, sha, row)


def ensure_postgres(conn: Any, key: str, name: str, ddl: str | list[str] | None) -> None:
    """The same on PostgreSQL, serialised with a transaction-scoped advisory lock."""
    parts = statements(ddl)
    if not parts:
        return
    sha = digest(parts)
    with _lock:
        if (key, name, sha) in _checked:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (TABLE,))
            conn.execute(_CREATE)
            row = conn.execute(
                f"SELECT sha256, applied_at FROM {TABLE} WHERE name = %s", (name,)
            ).fetchone()
            if row is not None and isinstance(row, dict):
                row = (row["sha256"], row["applied_at"])
            if row is None:
                _run(name, lambda: [conn.execute(s) for s in parts])
                conn.execute(
                    f"INSERT INTO {TABLE} (name, sha256, applied_at) VALUES (%s, %s, %s)",
                    (name, sha, time.time()),
                )
        _settle(key, name, sha, row)


def _run(name: str, apply: Any) -> None:
    try:
        apply()
    except Exception as exc:  # noqa: BLE001 - the driver's error, as one DatabaseError
        raise DatabaseError(f"{name}: schema failed: {' '.join(str(exc).split())}") from None


def _settle(key: str, name: str, sha: str, row: Any) -> None:
    _checked.add((key, name, sha))
    if row is not None and row[0] != sha:
        applied = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(row[1])))
        log.warning(
            "[databases.%s] schema changed since it was applied on %s (sha256 %s, now %s); ductape does not re-run it: "
            "apply the change yourself, then delete its row from %s to record the new one",
            name,
            applied,
            row[0][:12],
            sha[:12],
            TABLE,
        )


def split_sqlite(parts: list[str]) -> list[str]:
    """Each entry's statements one by one (`sqlite3` executes one at a time inside our transaction)."""
    out: list[str] = []
    for part in parts:
        pending = ""
        for piece in part.split(";"):
            pending += piece + ";"
            if sqlite3.complete_statement(pending):
                if pending.strip(" \t\r\n;"):
                    out.append(pending.strip())
                pending = ""
        if pending.strip(" \t\r\n;"):
            out.append(pending.rstrip(";").strip())
    return out
