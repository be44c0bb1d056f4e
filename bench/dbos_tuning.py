"""DBOS "tuned" on SQLite: WAL in the file, and synchronous=NORMAL on every connection to it.

A module of its own, with no workflows in it, so that `dbos_queue.py` can tune
its system database without registering `dbos_side.py`'s workflows a second time.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

TUNED_FILES: set[str] = set()


@event.listens_for(sa.engine.Engine, "connect")
def _synchronous_normal(dbapi_conn: Any, _record: Any) -> None:
    if not isinstance(dbapi_conn, sqlite3.Connection):
        return
    main_file = dbapi_conn.execute("PRAGMA database_list").fetchone()[2]
    if main_file and os.path.realpath(main_file) in TUNED_FILES:
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")


def tune(path: Path) -> None:
    """Create `path` in WAL mode and have every later connection to it use synchronous=NORMAL."""
    with sqlite3.connect(path) as conn:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        raise RuntimeError(f"could not switch {path} to WAL (got {mode})")
    TUNED_FILES.add(os.path.realpath(path))
