"""After a run that uses every component with secrets, no secret value is in the store, `show`, `history` or the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import need, need_module, reachable

SECRETS = {
    "PAY_TOKEN": "paytok-81723-zz",  # app Authorization header
    "CARD_CVV": "cvv-55310-zz",  # a field the second fallback provider lists as secret
    "DB_PASSWORD": "dbpass-44019-zz",  # the password of a PostgreSQL URL
    "USER_API_KEY": "ukey-66205-zz",  # written to a secret column
    "SMS_KEY": "smskey-90871-zz",  # the sms webhook's X-Api-Key
    "SMTP_PASSWORD": "smtppw-12093-zz",  # never sent (no username), still a secret position
    "CALL_KEY": "callkey-33710-zz",  # a call's own X-Pay-Key header
}


@pytest.fixture
def pg_database() -> Iterator[str]:
    need("PostgreSQL", reachable("127.0.0.1", 5432), "nothing on :5432")
    psycopg = need_module("psycopg")
    name = f"ductape_secrets_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def config(http: str, smtp_port: int, pg_database: str) -> str:
    return f"""
    [apps.pay]
    base_url = "{http}"
    headers = {{ Authorization = "Bearer ${{PAY_TOKEN}}" }}
    [apps.pay.events.charge]
    method = "POST"
    path = "/echo"
    [apps.pay.events.broken]
    method = "POST"
    path = "/status/502"
    [apps.backup]
    base_url = "{http}"
    headers = {{ Authorization = "Bearer ${{PAY_TOKEN}}" }}
    secret = ["cvv"]
    [apps.backup.events.charge]
    method = "POST"
    path = "/echo"

    [fallbacks.payments]
    providers = [{{ app = "pay", event = "broken" }}, {{ app = "backup", event = "charge" }}]

    [databases.users]
    url = "sqlite:///users.db"
    schema = "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT, api_key TEXT)"
    secret = ["api_key"]
    [databases.users.events.add]
    sql = "INSERT INTO users (email, api_key) VALUES (:email, :api_key)"
    [databases.ledger]
    url = "postgresql://postgres:${{DB_PASSWORD}}@127.0.0.1:5432/{pg_database}"
    schema = "CREATE TABLE IF NOT EXISTS ledger (id SERIAL PRIMARY KEY, amount INTEGER)"
    [databases.ledger.events.add]
    sql = "INSERT INTO ledger (amount) VALUES (:amount)"
    [databases.ledger.events.broken]
    sql = "SELECT * FROM missing_table_for_test"

    [notifications.alerts]
    smtp = {{ host = "127.0.0.1", port = {smtp_port}, from = "shop@example.com", password = "${{SMTP_PASSWORD}}" }}
    sms = {{ webhook = "{http}/echo", headers = {{ X-Api-Key = "${{SMS_KEY}}" }} }}
    outbox = "outbox"
    secret = ["api_key"]
    [notifications.alerts.events.paid]
    subject = "Paid {{order}}"
    body = "Order {{order}} is paid."
    message = "Order {{order}} paid"
    title = "Paid"

    [storage.files]
    path = "files"
    journal_limit = 1000

    [brokers.orders]
    topics = ["paid"]

    [quotas.calls]
    limit = 10
    per = "1m"

    [graphs.people]
    path = "graph.db"
    """


FLOW = """
import os
from ductape_cli import workflow
from ductape_cli.components import ActionError, DatabaseError

@workflow("everything")
async def everything(ctx):
    cvv, key = os.environ["CARD_CVV"], os.environ["USER_API_KEY"]
    charged = await ctx.action.run(app="pay", event="charge", input={
        "headers": {"X-Pay-Key": os.environ["CALL_KEY"]}, "body": {"amount": 10}})
    try:
        await ctx.action.run(app="pay", event="broken", input={"headers": {"X-Pay-Key": os.environ["CALL_KEY"]}, "body": {"note": "x"}})
    except ActionError as exc:
        broken = str(exc)
    paid = await ctx.fallback.execute(fallback="payments", input={"body": {"amount": 10, "cvv": cvv}})
    user = await ctx.database.insert(database="users", event="add", data={"email": "a@b.c", "api_key": key})
    row = await ctx.database.insert(database="ledger", event="add", data={"amount": 10})
    try:
        await ctx.database.query(database="ledger", event="broken")
    except DatabaseError as exc:
        db_error = str(exc)
    sent = await ctx.notification.send(notification="alerts", event="paid", input={
        "email": {"recipients": ["a@example.com"], "template": {"order": "A1", "api_key": key}},
        "sms": {"phones": ["+100"], "message": {"order": "A1", "api_key": key}},
        "push": {"tokens": ["device-1"], "title": {}, "body": {"order": "A1"}},
    })
    up = await ctx.storage.upload(storage="files", input={"fileName": "receipt.txt", "content": "receipt " * 500})
    down = await ctx.storage.download(storage="files", input={"file_key": "receipt.txt"})
    topic = await ctx.messaging.produce(event="orders:paid", message={"order": "A1"})
    quota = await ctx.quota.execute(quota="calls", input={"key": "k"})
    node = await ctx.graph.create_node(graph="people", labels=["User"], properties={"name": "Jane"})
    return {"charged": charged, "broken": broken, "paid": paid, "user": user, "row": row, "db_error": db_error,
            "sent": sent, "up": up, "down_size": down["size"], "topic": topic, "quota": quota["allowed"], "node": node["id"]}
"""


def test_no_secret_value_is_stored_shown_or_written(
    make: Any,
    cli: Any,
    http_server: Any,
    smtp_server: Any,
    pg_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    engine = make(config(http_server.url, smtp_server.port, pg_database), FLOW)
    root = Path(engine.config.root)

    result = cli("run", "everything", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    out = result.json()["output"]
    assert out["paid"]["provider"] == {"app": "backup", "event": "charge"}
    assert out["paid"]["result"]["body"] == {"amount": 10, "cvv": "***"}
    assert out["user"]["api_key"] == "***"
    assert out["broken"].startswith("POST /status/502 -> 502")
    assert out["db_error"].startswith(
        'ledger.broken: relation "missing_table_for_test" does not exist'
    )
    assert sorted(out["sent"]) == ["email", "push", "sms"]
    # The real calls carried the secrets.
    sent = [
        r
        for r in http_server.requests
        if r["headers"].get("Authorization") == f"Bearer {SECRETS['PAY_TOKEN']}"
    ]
    assert len(sent) >= 3
    assert any(r["headers"].get("X-Api-Key") == SECRETS["SMS_KEY"] for r in http_server.requests)

    run_id = result.json()["workflow_id"]
    places = {
        "run output": result.stdout,
        "show --json": cli("show", "everything", "--json").stdout,
        "history --json": cli("history", run_id, "--json").stdout,
        "store": b"".join(
            p.read_bytes() for p in sorted((root / ".ductape").glob("state.db*"))
        ).decode("latin-1"),
        "outbox": "".join(p.read_text() for p in sorted((root / "outbox").glob("*.json"))),
    }
    assert places["outbox"]  # the push went there
    for step in (
        "action:pay:charge",
        "fallback:payments",
        "database:users:add",
        "notification:alerts:paid",
    ):
        places[f"step {step}"] = cli("step", run_id, step, "--json").stdout
    leaks = [
        (where, name)
        for where, text in places.items()
        for name, value in SECRETS.items()
        if value in text
    ]
    assert leaks == []
