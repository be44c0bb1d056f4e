"""The physical floor: how many one-row transactions SQLite itself commits per second.

Same Python `sqlite3` module, same folder, same statements ductape's writers use
(``BEGIN IMMEDIATE`` / INSERT / ``COMMIT`` on an autocommit connection), so the
only cost left is SQLite's and the disk's.

A fresh WAL grows with every commit, and on ext4 an fsync that grows a file
also commits the filesystem's journal; a long-lived store rewrites a WAL file
that already has its blocks, which synced 1.2-2× as fast here. `grown_wal`
measures that second case.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

GROWN_WAL_FRAMES = 1000  # SQLite's default wal_autocheckpoint: where a default WAL starts over


def commits_per_second(
    path: Path,
    journal_mode: str,
    synchronous: str,
    count: int,
    cap_seconds: float,
    grown_wal: bool = False,
) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        got = conn.execute(f"PRAGMA journal_mode = {journal_mode}").fetchone()[0]
        if got.lower() != journal_mode.lower():
            raise RuntimeError(f"{path}: journal_mode {journal_mode} refused (got {got})")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        if grown_wal:
            _grow_wal(conn, synchronous)
        execute = conn.execute
        clock = time.perf_counter
        start = clock()
        done = 0
        while done < count:
            execute("BEGIN IMMEDIATE")
            execute("INSERT INTO t (v) VALUES (?)", ("x",))
            execute("COMMIT")
            done += 1
            if done >= 50 and clock() - start > cap_seconds:
                break
        return done / (clock() - start)
    finally:
        conn.close()


def _grow_wal(conn: sqlite3.Connection, synchronous: str) -> None:
    """Untimed: fill the WAL to its default size, sync it and check it back in, so that the timed
    commits start it over and rewrite blocks it already has."""
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("PRAGMA synchronous = OFF")
    for _ in range(GROWN_WAL_FRAMES):
        conn.execute("INSERT INTO t (v) VALUES (?)", ("x",))
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # syncs the WAL, then the database
    conn.execute(f"PRAGMA wal_autocheckpoint = {GROWN_WAL_FRAMES}")
