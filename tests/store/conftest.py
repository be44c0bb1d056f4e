"""The store contract runs against every backend: each test gets `store` on SQLite and on PostgreSQL.

`location` is where that store lives (a file path or a schema's URL), so a test
can open a second store on it, as another thread, process or host would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ductape_cli.store import open_store

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "state.db")
        return
    from tests.pg import pg_schema

    with pg_schema() as url:
        yield url


@pytest.fixture
def opened(location: str) -> Iterator[Callable[[], Any]]:
    """Open another store on `location`; every one opened is closed after the test."""
    stores: list[Any] = []

    def open_one() -> Any:
        store = open_store(location)
        stores.append(store)
        return store

    yield open_one
    for store in stores:
        store.close()


@pytest.fixture
def store(opened: Callable[[], Any]) -> Any:
    return opened()
