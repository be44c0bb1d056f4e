"""ctx.database on real SQLite files and on the test PostgreSQL server (a schema of its own)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ductape_cli.components.database import pg_placeholders
from tests.services import need_module

USERS = """
[databases.users-db]
url = "{url}"
schema = [
  "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL, name TEXT, tags TEXT, status TEXT DEFAULT 'new')",
]
secret = ["password"]
[databases.users-db.events.create-user]
sql = "INSERT INTO users (email, name, tags) VALUES (:email, :name, :tags)"
[databases.users-db.events.find-by-email]
sql = "SELECT id, email, name, tags, status FROM users WHERE email = :email"
[databases.users-db.events.set-status]
sql = "UPDATE users SET status = :status WHERE id = :id"
[databases.users-db.events.remove]
sql = "DELETE FROM users WHERE id = :id"
[databases.users-db.events.count]
sql = "SELECT COUNT(*) AS n FROM users WHERE status = :status"
[databases.users-db.events.login]
sql = "SELECT id FROM users WHERE email = :email AND name = :password"
"""

CRUD = """
from ductape_cli import workflow
from ductape_cli.components import DatabaseError
from tests.services import need_module

@workflow("crud")
async def crud(ctx):
    email = ctx.input["email"]
    user = await ctx.database.insert(database="users-db", event="create-user",
                                     data={"email": email, "name": "Jane", "tags": ["a", "b"]})
    found = await ctx.database.query(database="users-db", event="find-by-email", params={"email": email})
    changed = await ctx.database.update(database="users-db", event="set-status", where={"id": user["id"]}, data={"status": "active"})
    counted = await ctx.database.execute(database="users-db", event="count", input={"status": "active"})
    try:
        await ctx.database.insert(database="users-db", event="create-user", data={"email": email, "name": "Again", "tags": None})
        duplicate = None
    except DatabaseError as exc:
        duplicate = str(exc)
    removed = await ctx.database.delete(database="users-db", event="remove", where={"id": user["id"]})
    gone = await ctx.database.query(database="users-db", event="find-by-email", params={"email": email})
    return {"user": user, "found": found, "changed": changed, "counted": counted, "duplicate": duplicate,
            "removed": removed, "gone": gone}
"""


def test_crud_on_a_fresh_sqlite_file_under_the_project_root(make: Any) -> None:
    engine = make(USERS.format(url="sqlite:///data/nested/users.db"), CRUD)
    email = "jane'); DROP TABLE users; --"
    result = engine.run("crud", {"email": email})
    assert result["status"] == "completed", result["error"]
    out = result["output"]
    assert out["user"] == {
        "id": 1,
        "email": email,
        "name": "Jane",
        "tags": '["a", "b"]',
        "status": "new",
    }
    assert out["found"] == [out["user"]]
    assert out["changed"] == 1
    assert out["counted"] == [{"n": 1}]
    assert out["duplicate"] == "users-db.create-user: UNIQUE constraint failed: users.email"
    assert out["removed"] == 1
    assert out["gone"] == []
    db = Path(engine.config.root) / "data" / "nested" / "users.db"
    with sqlite3.connect(
        db
    ) as conn:  # the "injection" was bound as a value: the table is still there
        assert conn.execute("SELECT COUNT(*) FROM users").fetchone() == (0,)


def test_missing_parameter_and_secret_fields(make: Any, journal: Any, recorded: Any) -> None:
    engine = make(
        USERS.format(url="sqlite:///users.db"),
        """
        from ductape_cli import workflow
        from ductape_cli.components import DatabaseError

        @workflow("params")
        async def params(ctx):
            rows = await ctx.database.query(database="users-db", event="login", params={"email": "a@b.c", "password": "hunter2-pass"})
            try:
                await ctx.database.query(database="users-db", event="find-by-email", params={})
            except DatabaseError as exc:
                return {"rows": rows, "error": str(exc)}
    """,
    )
    result = engine.run("params", {})
    assert result["status"] == "completed", result["error"]
    assert result["output"]["rows"] == []
    assert "binding parameter :email" in result["output"]["error"]
    step = journal(engine, result["workflow_id"])["database:users-db:login"]
    assert step.input["params"] == {"email": "a@b.c", "password": "***"}
    assert "hunter2-pass" not in recorded(engine, result["workflow_id"])


def test_absolute_sqlite_path_and_execute_returning_a_count(runtime: Any, tmp_path: Path) -> None:
    import asyncio

    target = tmp_path / "elsewhere" / "abs.db"
    rt = runtime(f"""
    [databases.abs]
    url = "sqlite:///{target}"
    schema = "CREATE TABLE IF NOT EXISTS t (x INTEGER)"
    [databases.abs.events.add]
    sql = "INSERT INTO t (x) VALUES (:x), (:x)"
    """)
    assert asyncio.run(rt.database.execute(database="abs", event="add", input={"x": 1})) == 2
    assert target.is_file()


def test_pg_placeholders_leave_casts_and_literals_alone() -> None:
    sql = "SELECT :id::int AS id, ':not_a_param', 50% AS pct, \"col:x\" FROM t WHERE a = :a_1 AND b = 'it''s :b'"
    assert pg_placeholders(sql) == (
        "SELECT %(id)s::int AS id, ':not_a_param', 50%% AS pct, \"col:x\" FROM t WHERE a = %(a_1)s AND b = 'it''s :b'"
    )


def test_postgres_url_without_psycopg_is_a_clear_error(
    runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as on a machine without the postgres extra
    from ductape_cli.components import DatabaseError

    rt = runtime("""
    [databases.pg]
    url = "postgresql://app:pw-secret-1@127.0.0.1:1/app"
    [databases.pg.events.q]
    sql = "SELECT 1"
    """)
    with pytest.raises(
        DatabaseError, match=r"psycopg is not installed: pip install 'ductape\[postgres\]'"
    ):
        asyncio.run(rt.database.query(database="pg", event="q"))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A schema of its own on the test PostgreSQL server (`tests/pg.py`), dropped afterwards."""
    need_module("psycopg")
    from tests.pg import pg_schema

    with pg_schema() as url:
        yield url


def test_postgres_crud(make: Any, postgres_url: str) -> None:
    toml = USERS.format(url=postgres_url).replace("INTEGER PRIMARY KEY", "SERIAL PRIMARY KEY")
    toml += """
    [databases.users-db.events.typed]
    sql = "SELECT :n::int + 1 AS m, '50%' AS pct, now() AS at, 1.5::numeric AS d"
    """
    engine = make(
        toml,
        CRUD
        + """
@workflow("typed")
async def typed(ctx):
    return await ctx.database.execute(database="users-db", event="typed", input={"n": "41"})
""",
    )
    email = "pg'); DROP TABLE users; --"
    result = engine.run("crud", {"email": email})
    assert result["status"] == "completed", result["error"]
    out = result["output"]
    assert out["user"] == {
        "id": 1,
        "email": email,
        "name": "Jane",
        "tags": '["a", "b"]',
        "status": "new",
    }
    assert out["changed"] == 1 and out["removed"] == 1 and out["gone"] == []
    assert out["duplicate"].startswith(
        "users-db.create-user: duplicate key value violates unique constraint"
    )
    typed = engine.run("typed", {})
    assert typed["status"] == "completed", typed["error"]
    row = typed["output"][0]
    assert (row["m"], row["pct"], row["d"]) == (42, "50%", 1.5)
    assert isinstance(row["at"], str)
