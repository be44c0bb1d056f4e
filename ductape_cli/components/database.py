"""`ctx.database.*`: run a declared SQL event against a project database.

`url = "sqlite:///data/app.db"` is relative to the project root (four
slashes for an absolute path); `postgresql://` needs psycopg (the `postgres`
extra). Named parameters (`:email`) are always bound, never formatted into
the SQL; lists and objects are bound as JSON text. An optional `schema`
(string or list) is applied once per database (see `db_schema`), so samples
work on a fresh clone.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import decimal
import json
import re
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ductape_cli.components import db_schema
from ductape_cli.components.config import ResolvedDatabase
from ductape_cli.components.errors import DatabaseError, redact, scrub
from ductape_cli.components.runtime import (
    Component,
    check_mapping,
    secret_values,
    seed_style,
    without_secrets,
)
from ductape_cli.errors import InvalidInput

_RETURNING = re.compile(r"\breturning\b", re.IGNORECASE)
_INSERT = re.compile(r"^\s*(insert|replace)\b", re.IGNORECASE)
Values = Mapping[str, Any] | None


class DatabaseComponent(Component):
    kind = "database"

    # Every method binds whichever of data / params / where / input it is given (merged);
    # they differ only in what they return.

    @seed_style
    def insert(
        self,
        database: str,
        event: str,
        data: Values = None,
        *,
        params: Values = None,
        where: Values = None,
        input: Values = None,
    ) -> Any:
        """Run an INSERT; returns the inserted row as a dict (RETURNING * is added when missing)."""
        return self._call(
            "insert", database, event, data=data, params=params, where=where, input=input
        )

    @seed_style
    def query(
        self,
        database: str,
        event: str,
        params: Values = None,
        *,
        data: Values = None,
        where: Values = None,
        input: Values = None,
    ) -> Any:
        """Run a SELECT; returns a list of row dicts."""
        return self._call(
            "query", database, event, data=data, params=params, where=where, input=input
        )

    @seed_style
    def update(
        self,
        database: str,
        event: str,
        data: Values = None,
        where: Values = None,
        *,
        params: Values = None,
        input: Values = None,
    ) -> Any:
        """Run an UPDATE with `data` and `where` bound together; returns the number of rows changed."""
        return self._call(
            "update", database, event, data=data, params=params, where=where, input=input
        )

    @seed_style
    def delete(
        self,
        database: str,
        event: str,
        where: Values = None,
        *,
        data: Values = None,
        params: Values = None,
        input: Values = None,
    ) -> Any:
        """Run a DELETE; returns the number of rows removed."""
        return self._call(
            "delete", database, event, data=data, params=params, where=where, input=input
        )

    @seed_style
    def execute(
        self,
        database: str,
        event: str,
        input: Values = None,
        *,
        data: Values = None,
        params: Values = None,
        where: Values = None,
    ) -> Any:
        """Run any statement: returns its rows when it yields some, else the affected count."""
        return self._call(
            "execute", database, event, data=data, params=params, where=where, input=input
        )

    def _call(self, mode: str, database: str, event: str, **given: Any) -> Any:
        resolved = self.config.database(database, self.runtime.env)
        spec = self.config.event("databases", database, resolved.model, event)
        bind: dict[str, Any] = {}
        recorded: dict[str, Any] = {"database": database, "event": event}
        secret_fields = [*resolved.model.secret, *spec.secret]
        secrets = list(resolved.secret_values)
        for name, value in given.items():
            if value is None:
                continue
            values = check_mapping(value, name)
            for key, item in values.items():
                if key in bind and bind[key] != item:
                    given_names = ", ".join(k for k, v in given.items() if v is not None)
                    raise InvalidInput(
                        f"database {database}.{event}: {key!r} has different values in {given_names}"
                    )
                bind[key] = item
            recorded[name] = redact(values, secret_fields)
            secrets.extend(secret_values(values, secret_fields))
        recorded = scrub(recorded, secrets)
        root = self.config.project.root

        async def work() -> Any:
            return await asyncio.to_thread(
                run_statement, resolved, root, spec.sql, bind, mode, event, secrets
            )

        return self._dispatch(
            f"database:{database}:{event}", recorded, without_secrets(work, secret_fields, secrets)
        )


def run_statement(
    db: ResolvedDatabase,
    root: Path,
    sql: str,
    bind: dict[str, Any],
    mode: str,
    event: str,
    secrets: list[str],
) -> Any:
    if mode == "insert" and _INSERT.match(sql) and not _RETURNING.search(sql):
        sql = sql.rstrip().rstrip(";") + " RETURNING *"
    values = {k: _bindable(v) for k, v in bind.items()}
    try:
        if db.url.startswith("sqlite:///"):
            rows, count = _sqlite(db, root, sql, values)
        else:
            rows, count = _postgres(db, sql, values)
    except DatabaseError:
        raise
    except Exception as exc:  # noqa: BLE001 - driver errors become one clear DatabaseError
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise DatabaseError(scrub(f"{db.name}.{event}: {message}", secrets)) from None
    if mode == "insert":
        return rows[0] if rows else None
    if mode == "query":
        return rows or []
    if mode in ("update", "delete"):
        return count
    return rows if rows is not None else count


def _bindable(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False)
    return value


def sqlite_path(url: str, root: Path) -> str:
    rest = url[len("sqlite:///") :]
    if rest == ":memory:":
        return rest
    path = Path(rest)
    if not path.is_absolute():
        path = root / path
    return str(path)


def _sqlite(
    db: ResolvedDatabase, root: Path, sql: str, values: dict[str, Any]
) -> tuple[list[dict[str, Any]] | None, int]:
    path = sqlite_path(db.url, root)
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        db_schema.ensure_sqlite(conn, path, db.name, db.model.ddl)
        cursor = conn.execute(sql, values)
        rows = [_row(dict(r)) for r in cursor.fetchall()] if cursor.description else None
        return rows, cursor.rowcount
    finally:
        conn.close()


def _postgres(
    db: ResolvedDatabase, sql: str, values: dict[str, Any]
) -> tuple[list[dict[str, Any]] | None, int]:
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError:
        raise DatabaseError(
            f"database {db.name} is PostgreSQL but psycopg is not installed: pip install 'ductape[postgres]'"
        ) from None
    with psycopg.connect(db.url, row_factory=dict_row, autocommit=True) as conn:
        db_schema.ensure_postgres(conn, db.url, db.name, db.model.ddl)
        cursor = conn.execute(pg_placeholders(sql), values)
        rows = [_row(dict(r)) for r in cursor.fetchall()] if cursor.description else None
        return rows, cursor.rowcount


def _row(row: dict[str, Any]) -> dict[str, Any]:
    """Column values as JSON (the journal stores step outputs as JSON)."""
    return {key: _json_value(value) for key, value in row.items()}


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)  # UUID, intervals, network types...


def pg_placeholders(sql: str) -> str:
    """`:name` -> `%(name)s` in SQL code only; a literal `%` becomes `%%` everywhere.

    Quoted strings (`'...'`, `E'...'` with backslash escapes), quoted
    identifiers, `$tag$...$tag$` bodies, `--` and `/* */` comments and
    `::type` casts are passed through untouched.
    """
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        end = _skip(sql, i)
        if end > i:
            out.append(sql[i:end].replace("%", "%%"))
            i = end
            continue
        ch = sql[i]
        if sql.startswith("::", i):
            out.append("::")
            i += 2
            continue
        if ch == ":" and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_"):
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] == "_"):
                j += 1
            out.append(f"%({sql[i + 1 : j]})s")
            i = j
            continue
        out.append("%%" if ch == "%" else ch)
        i += 1
    return "".join(out)


_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _skip(sql: str, i: int) -> int:
    """The end of the literal, quoted identifier or comment starting at `i` (or `i` when none does)."""
    n = len(sql)
    ch = sql[i]
    if (
        ch in ("E", "e")
        and sql.startswith("'", i + 1)
        and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_"))
    ):
        j = i + 2
        while j < n and sql[j] != "'" or sql.startswith("''", j):
            j += 2 if sql[j] == "\\" or sql.startswith("''", j) else 1
        return min(j + 1, n)
    if ch in ("'", '"'):
        j = i + 1
        while j < n:
            if sql[j] == ch:
                if sql.startswith(ch * 2, j):
                    j += 2
                    continue
                return j + 1
            j += 1
        return n
    if sql.startswith("--", i):
        j = sql.find("\n", i)
        return n if j == -1 else j
    if sql.startswith("/*", i):
        depth, j = 0, i
        while j < n:
            if sql.startswith("/*", j):
                depth, j = depth + 1, j + 2
            elif sql.startswith("*/", j):
                depth, j = depth - 1, j + 2
                if depth == 0:
                    return j
            else:
                j += 1
        return n
    if ch == "$" and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
        match = _DOLLAR_TAG.match(sql, i)
        if match:
            j = sql.find(match.group(0), match.end())
            return n if j == -1 else j + len(match.group(0))
    return i
