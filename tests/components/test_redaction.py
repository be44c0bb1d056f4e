"""What component calls record: secrets from every provider, secret columns in outputs, header errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ductape_cli.components.database import pg_placeholders


def test_fallback_redacts_with_every_providers_secret_fields(
    make: Any, http_server: Any, journal: Any, recorded: Any
) -> None:
    engine = make(
        f"""
    [apps.first]
    base_url = "{http_server.url}"
    secret = ["token"]
    [apps.first.events.pay]
    method = "POST"
    path = "/status/503"
    [apps.second]
    base_url = "{http_server.url}"
    [apps.second.events.pay]
    method = "POST"
    path = "/echo"
    secret = ["cvv"]
    [fallbacks.pay]
    providers = [{{ app = "first", event = "pay" }}, {{ app = "second", event = "pay" }}]
    """,
        """
from ductape_cli import workflow

@workflow("pay")
async def pay(ctx):
    done = await ctx.fallback.execute(fallback="pay", input={"body": {"amount": 5, "cvv": ctx.input["cvv"], "token": "tok-9981"}})
    return {"provider": done["provider"]}
""",
    )
    result = engine.run("pay", {"cvv": "cvv-4417"})
    assert result["status"] == "completed", result["error"]
    step = journal(engine, result["workflow_id"])["fallback:pay"]
    assert step.input["input"]["body"] == {"amount": 5, "cvv": "***", "token": "***"}
    text = recorded(engine, result["workflow_id"])
    assert "tok-9981" not in text
    steps = [r for r in engine.store.load_journal(result["workflow_id"]).values()]
    assert all("cvv-4417" not in repr(r.input) + repr(r.output) for r in steps)


USERS = """
[databases.users]
url = "{url}"
schema = "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT, password TEXT, api_key TEXT)"
secret = ["password"]
[databases.users.events.add]
sql = "INSERT INTO users (email, password, api_key) VALUES (:email, :password, :api_key)"
secret = ["api_key"]
[databases.users.events.all]
sql = "SELECT * FROM users"
secret = ["api_key"]
"""

STORE_USER = """
from ductape_cli import workflow

@workflow("signup")
async def signup(ctx):
    user = await ctx.database.insert(database="users", event="add",
                                     data={"email": "a@b.c", "password": ctx.input["password"], "api_key": ctx.input["key"]})
    rows = await ctx.database.query(database="users", event="all")
    return {"user": user, "rows": rows}
"""


def test_insert_output_redacts_secret_columns(make: Any, recorded: Any) -> None:
    engine = make(USERS.format(url="sqlite:///users.db"), STORE_USER)
    result = engine.run("signup", {"password": "pw-7731-secret", "key": "key-5520-secret"})
    assert result["status"] == "completed", result["error"]
    assert result["output"]["user"] == {
        "id": 1,
        "email": "a@b.c",
        "password": "***",
        "api_key": "***",
    }
    assert result["output"]["rows"] == [
        {"id": 1, "email": "a@b.c", "password": "***", "api_key": "***"}
    ]
    steps = list(engine.store.load_journal(result["workflow_id"]).values())
    assert all("pw-7731" not in repr(r.output) and "key-5520" not in repr(r.output) for r in steps)
    history = str(engine.history(result["workflow_id"]))
    assert "pw-7731" not in history.replace(
        repr({"password": "pw-7731-secret", "key": "key-5520-secret"}), ""
    )


def test_pg_placeholders_past_comments_and_dollar_quotes() -> None:
    sql = (
        "SELECT :a -- it's a comment with :not\n"
        "/* don't :skip */ , $$ it's :quoted $$, $tag$ :also 'x $tag$, E'it\\'s :e', :b::text"
    )
    assert pg_placeholders(sql) == (
        "SELECT %(a)s -- it's a comment with :not\n"
        "/* don't :skip */ , $$ it's :quoted $$, $tag$ :also 'x $tag$, E'it\\'s :e', %(b)s::text"
    )


def test_crlf_in_an_email_header_is_a_notification_error(make: Any, smtp_server: Any) -> None:
    engine = make(
        f"""
    [notifications.mail]
    smtp = {{ host = "127.0.0.1", port = {smtp_server.port}, from = "shop@example.com" }}
    [notifications.mail.events.hello]
    subject = "Hello {{name}}"
    body = "Hi"
    """,
        """
from ductape_cli import workflow

@workflow("mail")
async def mail(ctx):
    return await ctx.notification.email(notification="mail", event="hello", recipients=["a@example.com"],
                                        subject={"name": ctx.input["name"]})
""",
    )
    before = len(smtp_server.mailbox.messages)
    result = engine.run("mail", {"name": "x\r\nBcc: victim@example.com"})
    assert result["status"] == "failed"
    assert result["error"]["code"] == "NOTIFICATION_ERROR", result["error"]
    assert "line break" in result["error"]["message"]
    assert len(smtp_server.mailbox.messages) == before


@pytest.mark.parametrize(
    ("per", "shown"),
    [("1m", "1m"), ("90s", "1m30s"), ("1h30m", "1h30m"), ("250ms", "250ms"), (1500, "1s500ms")],
)
def test_quota_detail_prints_durations_as_written(runtime: Any, per: Any, shown: str) -> None:
    from ductape_cli.components.config import load_components

    per_toml = f'"{per}"' if isinstance(per, str) else per
    rt = runtime(f"""
    [quotas.api]
    limit = 3
    per = {per_toml}
    """)
    rows = load_components(rt.config).summary()
    assert rows == [{"table": "quotas", "name": "api", "detail": f"3 per {shown}"}]
    assert asyncio.run(rt.quota.execute(quota="api"))["allowed"] is True
