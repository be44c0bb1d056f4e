"""DBOS Transact on SQLite, with the same workflow shapes, as shipped and tuned.

Importing this module imports dbos (about a second), so run.py imports it only
when a DBOS figure is wanted.

As shipped, DBOS leaves SQLite's defaults: a rollback journal
(journal_mode=DELETE) and synchronous=FULL. "Tuned" matches ductape's default
durability: before launch the file is created and switched to WAL (which
SQLite keeps in the file), and every connection SQLAlchemy opens to that file
runs ``PRAGMA synchronous=NORMAL`` from a class-level ``connect`` listener on
``sqlalchemy.engine.Engine`` (DBOS 3.4 sets ``isolation_level``, busy_timeout
and foreign_keys in its own listener and never touches synchronous).
`pragmas()` reads both settings back through DBOS's own engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbos import DBOS
from dbos_tuning import tune
from shapes import PAYLOAD_1KB


@DBOS.step()
def noop() -> None:
    return None


@DBOS.step()
def kilobyte() -> dict[str, Any]:
    return PAYLOAD_1KB


@DBOS.workflow()
def steps10() -> dict[str, bool]:
    for _ in range(10):
        noop()
    return {"ok": True}


@DBOS.workflow()
def steps1() -> dict[str, bool]:
    noop()
    return {"ok": True}


@DBOS.workflow()
def steps10_1kb() -> dict[str, bool]:
    for _ in range(10):
        kilobyte()
    return {"ok": True}


WORKFLOWS = {"steps10": steps10, "steps1": steps1, "steps10-1kb": steps10_1kb}


class DbosSide:
    """One DBOS instance (DBOS is a process-wide singleton: destroy it before the next one)."""

    def __init__(self, folder: Path, tuned: bool) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "dbos.sqlite"
        if tuned:
            tune(self.path)
        DBOS(
            config={
                "name": "bench",
                "system_database_url": f"sqlite:///{self.path}",
                "log_level": "WARNING",
            }
        )
        DBOS.launch()

    def warm_up(self, tags: list[str]) -> None:
        for tag in tags:
            self.run(tag)

    def run(self, tag: str) -> Any:
        return WORKFLOWS[tag]()

    def pragmas(self) -> tuple[str, int]:
        """(journal_mode, synchronous) as DBOS's own system-database connections see them."""
        from dbos._dbos import _get_dbos_instance

        with _get_dbos_instance()._sys_db.engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        return str(mode), int(sync or 0)

    def close(self) -> None:
        DBOS.destroy()
