"""Where runs, journals and events are kept. All SQL lives in this package.

`Store` is the interface the engine talks to; `SqliteStore` is the
implementation (a PostgreSQL one can stand beside it with the same methods).
"""

from ductape_cli.store.encoding import dumps
from ductape_cli.store.sqlite import EventRow, SqliteStore

Store = SqliteStore


def open_store(path: str, *, durability: str = "normal", namespace: str | None = None) -> SqliteStore:
    """Open (creating and migrating if needed) the store at `path`; ":memory:" for tests.

    `namespace` scopes runs, definitions and schedules to one project (None: all of them).
    """
    return SqliteStore(path, durability=durability, namespace=namespace)


__all__ = ["EventRow", "SqliteStore", "Store", "dumps", "open_store"]
