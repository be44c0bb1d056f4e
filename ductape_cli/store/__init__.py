"""Where runs, journals and events are kept. All SQL lives in this package.

`Store` is the protocol the engine talks to (store/protocol.py); `SqliteStore`
(one file) and `PostgresStore` (one database shared by many hosts) implement it.
`open_store` picks one by location: a path or ``sqlite:///path`` for SQLite,
``postgresql://...`` for PostgreSQL.
"""

from ductape_cli.errors import InvalidInput
from ductape_cli.store.encoding import dumps
from ductape_cli.store.protocol import Store
from ductape_cli.store.sqlite import EventRow, SqliteStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


def open_store(path: str, *, durability: str = "normal", namespace: str | None = None) -> Store:
    """Open (creating and migrating if needed) the store at `path`; ":memory:" for tests.

    `namespace` scopes runs, definitions and schedules to one project (None: all of them).
    """
    if is_postgres(path):
        try:
            from ductape_cli.store.postgres import (
                PostgresStore,  # psycopg only for those who use it
            )
        except ImportError as exc:
            raise InvalidInput(
                f"a postgresql:// store needs {exc.name or 'psycopg'}: pip install 'ductape[postgres]'"
            ) from None

        return PostgresStore(path, durability=durability, namespace=namespace)
    if "://" in path:
        scheme = path.split("://", 1)[0]
        raise InvalidInput(
            f"unknown store scheme {scheme!r}: use a file path, sqlite:///path or postgresql://..."
        )
    return SqliteStore(path, durability=durability, namespace=namespace)


__all__ = ["EventRow", "SqliteStore", "Store", "dumps", "is_postgres", "open_store"]
