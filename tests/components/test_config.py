"""Component tables of ductape.toml: every mistake names the file, the table and the line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ductape_cli.components.config import load_components
from ductape_cli.config import load_config
from ductape_cli.errors import ConfigError

# (tables, the text of the line the error must point at, "[table] message")
BAD = {
    "bad method": (
        '[apps.api]\nbase_url = "http://x"\n[apps.api.events.get-item]\nmethod = "FETCH"\npath = "/x"\n',
        'method = "FETCH"',
        "[apps.api.events.get-item] method: Input should be 'GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD' or 'OPTIONS'",
    ),
    "unknown key": (
        '[apps.api]\nbase_uri = "http://x"\n',
        "base_uri",
        (
            "[apps.api] unknown key 'base_uri' (known: base_url, constants, description, envs, events, headers, "
            "retries, retry_delay, secret, timeout, variables)"
        ),
    ),
    "relative path": (
        '[apps.api]\nbase_url = "http://x"\n[apps.api.events.e]\npath = "items"\n',
        'path = "items"',
        "[apps.api.events.e] path: path must start with '/', got 'items'",
    ),
    "base_url scheme": (
        '[apps.api]\nbase_url = "ftp://x"\n',
        "base_url",
        "[apps.api] base_url: base_url must start with http:// or https://, got 'ftp://x'",
    ),
    "header not a string": (
        '[apps.api]\nbase_url = "http://x"\nheaders = { X-Count = 1 }\n',
        "headers",
        "[apps.api] headers.X-Count: Input should be a valid string",
    ),
    "env not declared": (
        '[apps.api]\nbase_url = "http://x"\n[apps.api.envs.staging]\nbase_url = "http://y"\n',
        "[apps.api.envs.staging]",
        "[apps.api.envs.staging] env 'staging' is not declared in [envs] (dev, prd)",
    ),
    "smtp typo": (
        '[notifications.n]\nsmtp = { host = "h", from = "a@b", prot = 1 }\n',
        "smtp",
        "[notifications.n] smtp: unknown key 'prot' (known: from, host, password, port, ssl, starttls, timeout, username)",
    ),
    "smtp without from": (
        '[notifications.n]\nsmtp = { host = "h" }\n',
        "smtp",
        "[notifications.n] smtp: missing required key 'from'",
    ),
    "no transport": (
        '[notifications.n]\n[notifications.n.events.e]\nsubject = "x"\n',
        "[notifications.n]",
        "[notifications.n] needs an outbox folder or a transport (smtp, sms, push)",
    ),
    "bad duration": (
        '[quotas.q]\nlimit = 5\nper = "soon"\n',
        "per =",
        "[quotas.q] per: invalid duration 'soon': use ms or a number with a unit, e.g. 500ms, 5s, 10m, 1h, 1d",
    ),
    "zero limit": (
        '[quotas.q]\nlimit = 0\nper = "1m"\n',
        "limit",
        "[quotas.q] limit: Input should be greater than or equal to 1",
    ),
    "database scheme": (
        '[databases.db]\nurl = "mysql://x"\n',
        "url",
        "[databases.db] url: url must be sqlite:///path.db or postgresql://..., got 'mysql://x'",
    ),
    "event without sql": (
        '[databases.db]\nurl = "sqlite:///x.db"\n[databases.db.events.e]\nsq = "x"\n',
        "[databases.db.events.e]",
        "[databases.db.events.e] missing required key 'sql'",
    ),
    "storage without path": (
        '[storage.s]\nfolder = "x"\n',
        "[storage.s]",
        "[storage.s] missing required key 'path'",
    ),
    "no topics": (
        "[brokers.b]\ntopics = []\n",
        "topics",
        "[brokers.b] topics: List should have at least 1 item after validation, not 0",
    ),
    "provider without event": (
        '[fallbacks.f]\nproviders = [{ app = "a" }]\n',
        "providers",
        "[fallbacks.f] providers[0]: missing required key 'event'",
    ),
    "provider not declared": (
        '[fallbacks.f]\nproviders = [{ app = "a", event = "b" }]\n',
        "providers",
        "[fallbacks.f] provider app 'a' is not declared in [apps]",
    ),
    "sql action without sql": (
        '[graphs.g]\npath = "g.db"\n[graphs.g.actions.a]\nkind = "sql"\n',
        "[graphs.g.actions.a]",
        '[graphs.g.actions.a] kind = "sql" needs sql = "SELECT ..."',
    ),
    "component not a table": ("[apps]\napi = 5\n", "api = 5", "[apps] api: must be a table"),
}


def write(root: Path, tables: str) -> Path:
    path = root / "ductape.toml"
    path.write_text(
        '[project]\nname = "x"\n\n[envs.dev]\n[envs.prd]\n\n' + tables, encoding="utf-8"
    )
    return path


@pytest.mark.parametrize(("tables", "needle", "expected"), list(BAD.values()), ids=list(BAD))
def test_bad_tables_name_file_table_and_line(
    tmp_path: Path, tables: str, needle: str, expected: str
) -> None:
    path = write(tmp_path, tables)
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if needle in text)
    with pytest.raises(ConfigError) as info:
        load_components(load_config(tmp_path))
    assert info.value.message == f"{path.resolve()}:{line}: {expected}"


def test_design_example_validates(tmp_path: Path) -> None:
    write(
        tmp_path,
        textwrap.dedent("""
    [apps.inventory-api]
    base_url = "http://127.0.0.1:8765"
    headers = { Authorization = "Bearer ${INVENTORY_TOKEN:-dev-token}" }
    variables = { api_version = "2024-01-01" }
    constants = { default_currency = "usd" }
    [apps.inventory-api.envs.prd]
    base_url = "https://inventory.example.com"
    [apps.inventory-api.events.check-availability]
    method = "POST"
    path = "/availability"
    [apps.inventory-api.events.get-item]
    method = "GET"
    path = "/items/{id}"

    [databases.users-db]
    url = "sqlite:///data/users.db"
    [databases.users-db.events.create-user]
    sql = "INSERT INTO users (email, name) VALUES (:email, :name) RETURNING *"

    [notifications.transactional]
    outbox = ".ductape/outbox"
    [notifications.transactional.events.welcome-email]
    subject = "Welcome, {name}"
    body = "Hi {name}, thanks for joining."

    [storage.documents]
    path = "storage/documents"

    [brokers.order-events]
    topics = ["order-created"]

    [quotas.api-rate-limit]
    limit = 100
    per = "1m"

    [apps.stripe]
    base_url = "http://127.0.0.1:8766"
    [apps.stripe.events.create-charge]
    method = "POST"
    path = "/charges"
    [apps.paypal]
    base_url = "http://127.0.0.1:8767"
    [apps.paypal.events.create-payment]
    method = "POST"
    path = "/payments"

    [fallbacks.payment-fallback]
    providers = [
      { app = "stripe", event = "create-charge" },
      { app = "paypal", event = "create-payment" },
    ]

    [graphs.social-graph]
    path = "data/social.db"
    """),
    )
    components = load_components(load_config(tmp_path))
    dev = components.app("inventory-api", "dev")
    assert (dev.base_url, dev.headers) == (
        "http://127.0.0.1:8765",
        {"Authorization": "Bearer dev-token"},
    )
    assert components.app("inventory-api", "prd").base_url == "https://inventory.example.com"
    assert components.model.quotas["api-rate-limit"].per == 60_000
    assert [row["table"] for row in components.summary()].count("apps") == 3


def test_importing_components_does_not_import_pydantic_or_httpx() -> None:
    repo = Path(__file__).resolve().parents[2]
    code = (
        "import sys, ductape_cli.components, ductape_cli.engine.engine\n"
        "heavy = [m for m in ('pydantic', 'httpx') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": str(repo)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_unknown_component_names_the_declared_ones(runtime: Any) -> None:
    rt = runtime('[storage.documents]\npath = "docs"\n')
    with pytest.raises(
        ConfigError, match=r"ductape.toml: no \[storage.photos\] declared \(storage: documents\)"
    ):
        rt.storage.upload(storage="photos", input={"fileName": "a.txt", "content": "x"})
