"""The store file: private permissions, and no silent fresh start over an emptied or foreign file (items 11, 15)."""

from __future__ import annotations

import os
import sqlite3
import stat
import time

import pytest

SAMPLE = """
    from ductape_cli import workflow

    @workflow("greet")
    async def greet(ctx):
        return await ctx.step("hello", lambda: "hi")
"""


@pytest.fixture
def greet(project):
    project.write("greet", SAMPLE)
    return project


def test_store_folder_is_0700_and_store_file_0600(greet, cli) -> None:
    old = os.umask(0o022)
    try:
        assert cli("run", "greet", "--json").exit_code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(greet.store.parent.stat().st_mode) == 0o700
    for path in greet.store.parent.iterdir():  # state.db, and its -wal / -shm copies the mode
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def _old_empty_file(path) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"")
    past = time.time() - 3600
    os.utime(path, (past, past))


@pytest.mark.parametrize("args", [("list",), ("run", "greet"), ("status", "wf_whatever")])
def test_an_emptied_store_is_refused_naming_the_file(greet, cli, args) -> None:
    _old_empty_file(greet.store)
    result = cli(*args)
    assert result.exit_code == 2, result.stdout
    assert str(greet.store) in result.stderr and "empty" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert greet.store.stat().st_size == 0  # nothing written


def test_a_brand_new_empty_file_is_another_process_creating_the_store(greet, cli) -> None:
    greet.store.parent.mkdir(exist_ok=True)
    greet.store.write_bytes(b"")  # just now: a concurrent `ductape` is creating it
    assert cli("run", "greet", "--json").exit_code == 0


def test_a_file_that_is_not_sqlite_is_refused(greet, cli) -> None:
    greet.store.parent.mkdir(exist_ok=True)
    greet.store.write_text("my notes, not a database\n" * 100)
    result = cli("list")
    assert result.exit_code == 2
    assert str(greet.store) in result.stderr and "Traceback" not in result.stderr
    assert greet.store.read_text().startswith("my notes")


def test_another_sqlite_database_is_not_migrated_into(greet, cli) -> None:
    greet.store.parent.mkdir(exist_ok=True)
    with sqlite3.connect(greet.store) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    result = cli("run", "greet")
    assert result.exit_code == 2
    assert "not a ductape store" in result.stderr and str(greet.store) in result.stderr
    with sqlite3.connect(greet.store) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"customers"}
