"""A PostgreSQL schema of its own for each test that needs one (DESIGN §11).

`DUCTAPE_TEST_PG` names the server (default: the project machines' local
PostgreSQL, `postgresql://postgres@127.0.0.1:5432/test`). Each schema is
created for one test and dropped after it, so runs never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from tests.services import need, reachable

SERVER = os.environ.get("DUCTAPE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def need_postgres() -> None:
    parts = urlsplit(SERVER)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    need(
        "PostgreSQL",
        reachable(host, port),
        f"nothing on {host}:{port} (set DUCTAPE_TEST_PG to point at a server)",
    )


def schema_url(schema: str) -> str:
    joiner = "&" if "?" in SERVER else "?"
    return f"{SERVER}{joiner}options=-csearch_path%3D{schema}"


@contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh, empty schema; yields a store URL whose connections use it. Dropped afterwards."""
    import psycopg

    need_postgres()
    schema = "ductape_t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = schema_url(schema)
    try:
        yield url
    finally:
        from ductape_cli.store.postgres import close_pools

        close_pools(url)
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
