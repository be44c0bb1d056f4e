"""A database's `schema` is applied once per database, not once per process; a changed one is reported."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from ductape_cli.components import db_schema
from tests.process.helpers import run as ductape
from tests.services import need_module

TABLE = """
[databases.notes]
url = "{url}"
schema = ["CREATE TABLE notes (id {key}, body TEXT)", "CREATE INDEX notes_body ON notes (body); CREATE TABLE tags (name TEXT)"]
[databases.notes.events.add]
sql = "INSERT INTO notes (body) VALUES (:body)"
[databases.notes.events.count]
sql = "SELECT COUNT(*) AS n FROM notes"
"""

FLOW = """
from ductape_cli import workflow

@workflow("note")
async def note(ctx):
    await ctx.database.insert(database="notes", event="add", data={"body": ctx.input["body"]})
    return (await ctx.database.query(database="notes", event="count"))[0]["n"]
"""


def test_plain_create_table_survives_a_second_process(make: Any) -> None:
    engine = make(TABLE.format(url="sqlite:///notes.db", key="INTEGER PRIMARY KEY"), FLOW)
    root = engine.config.root
    first = ductape(root, "run", "note", "--input", '{"body": "a"}', "--json")
    assert first.returncode == 0, first.stderr
    second = ductape(root, "run", "note", "--input", '{"body": "b"}', "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    assert '"output": 2' in second.stdout


def test_a_changed_schema_is_reported_not_rerun(
    make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    toml = TABLE.format(url="sqlite:///notes.db", key="INTEGER PRIMARY KEY")
    engine = make(toml, FLOW)
    assert engine.run("note", {"body": "a"})["output"] == 1
    db_schema._checked.clear()  # as a new process would
    engine = make(toml.replace("body TEXT)", "body TEXT, extra TEXT)"), FLOW)
    with caplog.at_level(logging.WARNING, logger="ductape.components"):
        result = engine.run("note", {"body": "b"})
    assert result["status"] == "completed", result["error"]
    assert result["output"] == 2  # the old table, kept
    assert any(
        "[databases.notes] schema changed since it was applied" in r.getMessage()
        for r in caplog.records
    )


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A schema of its own on the test PostgreSQL server: creating and dropping a whole database
    costs seconds (DROP DATABASE waits for a checkpoint); the tables land in the schema all the same."""
    need_module("psycopg")
    from tests.pg import pg_schema

    with pg_schema() as url:
        yield url


def test_postgres_schema_applied_once_across_processes(make: Any, pg_url: str) -> None:
    engine = make(TABLE.format(url=pg_url, key="SERIAL PRIMARY KEY"), FLOW)
    assert engine.run("note", {"body": "a"})["output"] == 1
    db_schema._checked.clear()
    again = engine.run("note", {"body": "b"})
    assert again["status"] == "completed", again["error"]
    assert again["output"] == 2
    import psycopg

    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(f"SELECT name, length(sha256) FROM {db_schema.TABLE}").fetchall()
    assert rows == [("notes", 64)]


def test_statements_are_split_like_sqlite_reads_them() -> None:
    parts = [
        "CREATE TABLE a (x TEXT DEFAULT ';'); CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; SELECT 2; END;",
        "CREATE TABLE b (y)",
    ]
    assert db_schema.split_sqlite(parts) == [
        "CREATE TABLE a (x TEXT DEFAULT ';');",
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; SELECT 2; END;",
        "CREATE TABLE b (y);",
    ]
