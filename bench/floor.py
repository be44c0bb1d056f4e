"""The physical floor: how many one-row transactions SQLite itself commits per second.

Same Python `sqlite3` module, same folder, same statements ductape's writers use
(``BEGIN IMMEDIATE`` / INSERT / ``COMMIT`` on an autocommit connection), so the
only cost left is SQLite's and the disk's.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def commits_per_second(
    path: Path, journal_mode: str, synchronous: str, count: int, cap_seconds: float
) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        got = conn.execute(f"PRAGMA journal_mode = {journal_mode}").fetchone()[0]
        if got.lower() != journal_mode.lower():
            raise RuntimeError(f"{path}: journal_mode {journal_mode} refused (got {got})")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
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
