"""The store's SQL, as PostgreSQL reads it: one text for both backends, a few rewrites here.

The store's statements are written once (store/sqlite*.py, store/migrations.py).
PostgreSQL differs from SQLite in a handful of spellings, which `statement`
rewrites (and caches): ``?`` placeholders, ``BEGIN IMMEDIATE``, ``INSERT OR
IGNORE``/``OR REPLACE`` (upserts on the table's primary key), ``LIKE`` (which
ignores case in SQLite), a few functions (``substr(x, -n)``, ``json_extract``,
``instr``, scalar ``MAX``/``MIN``, ``SUM`` of a test), ``INDEXED BY``,
``IS ?``, 0 and 1 as booleans, and the column ``offset``, a reserved word
there. `ddl` does the same for the migrations: ``REAL`` is a float8, an
``INTEGER PRIMARY KEY`` a bigserial, ``WITHOUT ROWID`` means nothing, text
compares by code point (``COLLATE "C"``, SQLite's BINARY), and ``definitions``
gets the ``rowid`` SQLite gives every table (its queries order by it). What
cannot be spelled the same (claims with SKIP LOCKED, triggers, notifications)
lives in `postgres.py` and `PG_MIGRATIONS`.
"""

from __future__ import annotations

import re
from functools import lru_cache

_INSERT_VERB = re.compile(r"^\s*INSERT OR (IGNORE|REPLACE) INTO (\w+)\s*\(([^)]*)\)", re.S)
_OFFSET_COLUMN = re.compile(r'(?<!")\boffset\b(?!")')  # the column; the keyword is written OFFSET
_SUFFIX = re.compile(r"\bsubstr\((\w+), -(\?|\d+)\)")
_JSON_FIELD = re.compile(r"\bjson_extract\((\w+), '\$\.(\w+)'\)")
_WHERE_TRUE = re.compile(r"\bWHERE 1(?= AND | ORDER | GROUP | LIMIT |$)")
_SCALAR_MAX = re.compile(r"\bMAX\(([\w.]+), ([\w.]+)\)")
_SCALAR_MIN = re.compile(r"\bMIN\(([\w.]+), ([\w.]+)\)")
_INDEXED_BY = re.compile(r" INDEXED BY \w+")
_INSTR = re.compile(r"\binstr\(")
_SUM_TEST = re.compile(r"\bSUM\((\w+ IS (?:NOT )?NULL)\)")
_AGGREGATE = re.compile(
    r"\b(COUNT|MAX|MIN|SUM)\(|\bDISTINCT\b|\bGROUP BY\b|\bJOIN\b|\bFOR UPDATE\b"
)

# Statements PostgreSQL runs in place of SQLite's own housekeeping (none of them apply there).
_NOOP = "SELECT 1"


@lru_cache(maxsize=1024)
def statement(
    sql: str, primary_keys: tuple[tuple[str, tuple[str, ...]], ...], lock_rows: bool
) -> str:
    """`sql` (SQLite spelling, ``?`` placeholders) as psycopg runs it against PostgreSQL.

    `primary_keys` maps tables to their key columns (for ``INSERT OR REPLACE``); with
    `lock_rows` (inside a write transaction) a plain SELECT takes row locks ``FOR UPDATE``:
    SQLite's ``BEGIN IMMEDIATE`` serialises every writer, and this is what keeps a
    read-then-write of one run correct when PostgreSQL runs writers side by side.
    """
    text = sql.strip()
    if text == "BEGIN IMMEDIATE":
        return "BEGIN"
    if text.startswith("PRAGMA"):
        return _NOOP
    text = text.replace("%", "%%")
    match = _INSERT_VERB.match(text)
    if match:
        verb, table, columns = match.groups()
        text = "INSERT INTO " + text[match.end(1) + len(" INTO ") :]
        if verb == "IGNORE":
            text += " ON CONFLICT DO NOTHING"
        else:
            keys = dict(primary_keys)[table]
            names = [c.strip() for c in columns.split(",")]
            updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c not in keys)
            text += f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    text = _OFFSET_COLUMN.sub('"offset"', text)
    text = text.replace(" LIKE ", " ILIKE ")  # SQLite's LIKE ignores ASCII case
    text = _SUFFIX.sub(r"right(\1, \2)", text)  # substr(x, -n): the last n characters
    text = _JSON_FIELD.sub(r"(\1::json ->> '\2')", text)
    text = _INSTR.sub("strpos(", text)
    text = _SCALAR_MAX.sub(r"GREATEST(\1, \2)", text)  # SQLite's two-argument MAX is a scalar
    text = _SCALAR_MIN.sub(r"LEAST(\1, \2)", text)
    target = re.match(r"INSERT INTO (\w+)", text)
    if target and "DO UPDATE SET" in text:  # there a bare column could be the row's or EXCLUDED's
        text = re.sub(r"\b(GREATEST|LEAST)\((\w+), ", rf"\1({target.group(1)}.\2, ", text)
    text = _WHERE_TRUE.sub("WHERE TRUE", text)  # SQLite's 1 is a boolean
    text = text.replace("(0 OR ", "(FALSE OR ")  # and its 0
    text = _INDEXED_BY.sub("", text)  # PostgreSQL's planner picks its own index
    text = text.replace(" IS ?", " IS NOT DISTINCT FROM ?")  # equal, NULL included
    text = _SUM_TEST.sub(
        r"SUM(CASE WHEN \1 THEN 1 ELSE 0 END)", text
    )  # a boolean is not a number there
    text = _placeholders(text)
    if (
        lock_rows
        and text.upper().startswith("SELECT")
        and " FROM " in text
        and not _AGGREGATE.search(text)
    ):
        text += " FOR UPDATE"
    return text


def _placeholders(text: str) -> str:
    """``?`` → ``%s`` outside string literals."""
    out, quoted = [], False
    for char in text:
        if char == "'":
            quoted = not quoted
        out.append("%s" if char == "?" and not quoted else char)
    return "".join(out)


def ddl(sql: str) -> str:
    """A migration (SQLite spelling) as PostgreSQL DDL."""
    text = re.sub(r"\bINTEGER PRIMARY KEY\b", "BIGSERIAL PRIMARY KEY", sql)
    text = re.sub(r"\bREAL\b", "DOUBLE PRECISION", text)
    text = re.sub(
        r"\bTEXT\b", 'TEXT COLLATE "C"', text
    )  # compare and sort by code point, as SQLite does
    text = re.sub(r"\)\s*WITHOUT ROWID\s*$", ")", text)
    text = _SUFFIX.sub(r"right(\1, \2)", text)  # an index on the end of an id
    text = re.sub(r"^(CREATE TABLE definitions\w* \()", r"\1\n        rowid BIGSERIAL,", text)
    return text


# PostgreSQL-only schema, applied after the shared migrations and versioned apart from them.
# Wake-ups: a run that becomes claimable (queued, signalled, cancelled, its timer moved, its
# lease released) notifies the schema's channel with its due time, so idle workers on any
# host wake at once instead of polling.
PG_MIGRATIONS: list[str] = [
    """CREATE OR REPLACE FUNCTION ductape_notify_run() RETURNS trigger AS $$
    BEGIN
        IF NEW.status IN ('pending', 'running') AND NEW.ready_at IS NOT NULL AND NEW.owner IS NULL
           AND (TG_OP = 'INSERT' OR NEW.ready_at IS DISTINCT FROM OLD.ready_at OR OLD.owner IS NOT NULL) THEN
            PERFORM pg_notify('ductape_' || current_schema(), NEW.ready_at::text);
        END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER runs_notify AFTER INSERT OR UPDATE OF ready_at, owner ON runs
        FOR EACH ROW EXECUTE FUNCTION ductape_notify_run()""",
]

# The change feed `serve` tails (SQLite's FEED_TRIGGERS, in plpgsql): installed by `enable_feed`.
# A reader pages by id, so ids must follow commit order: each feed insert first takes one
# transaction-level lock, which orders the commits of writers while the feed is on (SQLite
# has one writer at a time anyway).
_FEED_LOCK = "PERFORM pg_advisory_xact_lock(hashtext('ductape_feed:' || current_schema()));"
PG_FEED_TRIGGERS: list[str] = [
    f"""CREATE OR REPLACE FUNCTION ductape_feed_run() RETURNS trigger AS $$
    BEGIN
        {_FEED_LOCK}
        IF TG_OP = 'INSERT' THEN
            INSERT INTO feed (run_id, kind, status, ts) VALUES (NEW.id, 'status', NEW.status, NEW.created_at);
        ELSIF OLD.status IS DISTINCT FROM NEW.status THEN
            INSERT INTO feed (run_id, kind, status, ts)
            VALUES (NEW.id, 'status', NEW.status, extract(epoch FROM clock_timestamp()));
        END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    f"""CREATE OR REPLACE FUNCTION ductape_feed_event() RETURNS trigger AS $$
    BEGIN
        {_FEED_LOCK}
        INSERT INTO feed (run_id, kind, ref, ts) VALUES (NEW.run_id, 'event', NEW.id, NEW.ts);
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    f"""CREATE OR REPLACE FUNCTION ductape_feed_step() RETURNS trigger AS $$
    BEGIN
        IF NEW.kind = 'step' AND NEW.status = 'completed' THEN
            {_FEED_LOCK}
            INSERT INTO feed (run_id, kind, ref, ts) VALUES (NEW.run_id, 'step', NEW.seq, NEW.ended_at);
        END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS feed_run ON runs",
    "CREATE TRIGGER feed_run AFTER INSERT OR UPDATE OF status ON runs FOR EACH ROW EXECUTE FUNCTION ductape_feed_run()",
    "DROP TRIGGER IF EXISTS feed_event ON events",
    "CREATE TRIGGER feed_event AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION ductape_feed_event()",
    "DROP TRIGGER IF EXISTS feed_step ON steps",
    "CREATE TRIGGER feed_step AFTER INSERT ON steps FOR EACH ROW EXECUTE FUNCTION ductape_feed_step()",
]
