"""`${VAR}` is filled in every string of every component table, and only secret positions are secrets."""

from __future__ import annotations

import asyncio
import json
import textwrap
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from ductape_cli.components.config import TABLES, ComponentConfig, Components, load_components
from ductape_cli.config import load_config
from ductape_cli.errors import ConfigError

# Every string-valued key of every table, each written as ${V_<n>} (values below).
EVERY_STRING = """
[project]
name = "interp"
default_env = "dev"
[envs.dev]
[envs.prd]

[apps.api]
base_url = "${V_BASE_URL}"
headers = { X-Tenant = "${V_TENANT}" }
variables = { region = "${V_REGION}" }
constants = { currency = "${V_CURRENCY}" }
timeout = "${V_TIMEOUT}"
retry_delay = "${V_RETRY_DELAY}"
secret = ["${V_SECRET_FIELD}"]
description = "${V_DESCRIPTION}"
[apps.api.envs.dev]
base_url = "${V_DEV_URL}"
headers = { X-Env = "${V_ENV_HEADER}" }
variables = { tier = "${V_TIER}" }
[apps.api.events.get]
path = "${V_EVENT_PATH}"
headers = { Accept = "${V_ACCEPT}" }
query = { expand = "${V_EXPAND}" }
timeout = "${V_EVENT_TIMEOUT}"
secret = ["${V_EVENT_SECRET}"]
description = "${V_EVENT_DESCRIPTION}"

[databases.db]
url = "${V_DB_URL}"
schema = "${V_DDL}"
secret = ["${V_DB_SECRET}"]
description = "${V_DB_DESCRIPTION}"
[databases.db.envs.dev]
url = "${V_DB_DEV_URL}"
[databases.db.events.q]
sql = "${V_SQL}"
secret = ["${V_Q_SECRET}"]
description = "${V_Q_DESCRIPTION}"

[databases.db2]
url = "sqlite:///db2.db"
schema = ["${V_DDL2}"]

[notifications.n]
outbox = "${V_OUTBOX}"
smtp = { host = "${V_SMTP_HOST}", from = "${V_FROM}", username = "${V_USER}", password = "${V_PASSWORD}", timeout = "${V_SMTP_TIMEOUT}" }
sms = { webhook = "${V_SMS_HOOK}", headers = { X-Api-Key = "${V_SMS_KEY}" }, timeout = "${V_SMS_TIMEOUT}" }
push = { webhook = "${V_PUSH_HOOK}", headers = { X-Channel = "${V_PUSH_CHANNEL}" }, timeout = "${V_PUSH_TIMEOUT}" }
secret = ["${V_N_SECRET}"]
description = "${V_N_DESCRIPTION}"
[notifications.n.events.e]
subject = "${V_SUBJECT}"
body = "${V_BODY}"
html = "${V_HTML}"
message = "${V_MESSAGE}"
title = "${V_TITLE}"
secret = ["${V_E_SECRET}"]
description = "${V_E_DESCRIPTION}"

[storage.s]
path = "${V_STORE_DIR}"
description = "${V_S_DESCRIPTION}"
[storage.s.events.up]
prefix = "${V_PREFIX}"
description = "${V_UP_DESCRIPTION}"

[brokers.b]
topics = ["${V_TOPIC}"]
secret = ["${V_B_SECRET}"]
description = "${V_B_DESCRIPTION}"

[brokers.j]
type = "nats"
url = "${V_NATS_URL}"
topics = ["t"]
group = "${V_GROUP}"
stream = "${V_STREAM}"
ack_wait = "${V_ACK_WAIT}"

[brokers.m]
type = "mqtt"
url = "${V_MQTT_URL}"
topics = ["t"]
session_expiry = "${V_SESSION_EXPIRY}"

[quotas.q]
limit = 3
per = "${V_PER}"
description = "${V_Q2_DESCRIPTION}"

[fallbacks.f]
providers = [{ app = "${V_PROVIDER_APP}", event = "${V_PROVIDER_EVENT}", timeout = "${V_PROVIDER_TIMEOUT}" }]
description = "${V_F_DESCRIPTION}"

[graphs.g]
path = "${V_GRAPH_PATH}"
description = "${V_G_DESCRIPTION}"
[graphs.g.actions.a]
kind = "sql"
label = "${V_LABEL}"
type = "${V_TYPE}"
params = { node = "${V_PARAM}" }
sql = "${V_GRAPH_SQL}"
description = "${V_A_DESCRIPTION}"
"""

SPECIAL = {
    "V_BASE_URL": "http://base.invalid",
    "V_DEV_URL": "http://127.0.0.1:18799",
    "V_EVENT_PATH": "/items",
    "V_TIMEOUT": "2s",
    "V_RETRY_DELAY": "5ms",
    "V_EVENT_TIMEOUT": "1s",
    "V_SMTP_TIMEOUT": "3s",
    "V_SMS_TIMEOUT": "4s",
    "V_PUSH_TIMEOUT": "5s",
    "V_PER": "1m",
    "V_PROVIDER_TIMEOUT": "6s",
    "V_PROVIDER_APP": "api",
    "V_PROVIDER_EVENT": "get",
    "V_DB_URL": "sqlite:///base.db",
    "V_DB_DEV_URL": "sqlite:///dev.db",
    "V_SMS_HOOK": "http://127.0.0.1:1/sms",
    "V_PUSH_HOOK": "http://127.0.0.1:1/push",
    "V_FROM": "shop@example.com",
    "V_GRAPH_SQL": "SELECT 1",
    "V_SQL": "SELECT 1",
    "V_NATS_URL": "nats://127.0.0.1:4222",
    "V_MQTT_URL": "mqtt://127.0.0.1:1883",
    "V_STREAM": "orders",
    "V_ACK_WAIT": "30s",
    "V_SESSION_EXPIRY": "1h",
    "V_DDL2": "CREATE TABLE IF NOT EXISTS u (x INTEGER)",
    "V_DDL": "CREATE TABLE IF NOT EXISTS t (x INTEGER)",
}


def _values() -> dict[str, str]:
    import re

    names = re.findall(r"\$\{(V_[A-Z0-9_]+)\}", EVERY_STRING)
    return {name: SPECIAL.get(name, f"value-of-{name.lower()}") for name in names}


def _string_fields(annotation: Any, path: str, seen: set[str]) -> None:
    """Every path under `annotation` that holds a string users write (Literal choices excluded)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *meta = typing.get_args(annotation)
        if any(
            getattr(getattr(m, "func", None), "__name__", "") == "_ms" for m in meta
        ):  # a duration string
            seen.add(path)
            return
        _string_fields(inner, path, seen)
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            _string_fields(arg, path, seen)
    elif origin is dict:
        _string_fields(typing.get_args(annotation)[1], path + ".*", seen)
    elif origin is list:
        _string_fields(typing.get_args(annotation)[0], path + "[]", seen)
    elif annotation is str or annotation is typing.Any:
        seen.add(path)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            _string_fields(
                info.annotation
                if not info.metadata
                else typing.Annotated[(info.annotation, *info.metadata)],
                f"{path}.{info.alias or name}" if path else (info.alias or name),
                seen,
            )


def _written(node: Any, path: str, found: set[str]) -> None:
    """Paths (names as *) where the config above writes a ${V_...}."""
    if isinstance(node, str):
        if "${V_" in node:
            found.add(path)
    elif isinstance(node, dict):
        for key, value in node.items():
            _written(value, f"{path}.{key}" if path else key, found)
    elif isinstance(node, list):
        for value in node:
            _written(value, path + "[]", found)


def _normal(path: str) -> str:
    """apps.api.events.get.path -> apps.*.events.*.path (the model's dict keys become *)."""
    from ductape_cli.components import config as cfg

    parts, out, model = path.split("."), [], Components
    current: Any = model
    for part in parts:
        field_name = part.split("[")[0]
        hit = None
        if isinstance(current, type) and issubclass(current, BaseModel):
            hit = next(
                (i for n, i in current.model_fields.items() if field_name in (n, i.alias)), None
            )
        if hit is not None:
            out.append(part)
            current = cfg._unwrap(hit.annotation)
            while typing.get_origin(current) is list:
                current = cfg._unwrap(typing.get_args(current)[0])
        else:  # a dict key
            out.append("*" + part[len(field_name) :])
            current = (
                cfg._unwrap(typing.get_args(current)[1])
                if typing.get_origin(current) is dict
                else current
            )
    return ".".join(out)


def test_the_config_below_writes_a_variable_into_every_string_field() -> None:
    import tomllib

    expected: set[str] = set()
    _string_fields(Components, "", expected)
    written: set[str] = set()
    _written(tomllib.loads(EVERY_STRING), "", written)
    written = {_normal(p) for p in written if not p.startswith("project")}
    assert expected - written == set()


def test_every_string_of_every_table_is_filled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ductape.toml").write_text(EVERY_STRING, encoding="utf-8")
    values = _values()
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    components = load_components(load_config(tmp_path))
    resolved = []
    for table in TABLES:
        for name in getattr(components.model, table):
            model, _ = components.resolve(table, name, "dev")
            resolved.append(model.model_dump(by_alias=True))
    text = json.dumps(resolved)
    assert "${" not in text
    for name, value in values.items():
        if name not in SPECIAL:
            assert value in text, name
    assert components.check("dev") == []
    app = components.app("api", "dev")
    assert app.base_url == "http://127.0.0.1:18799"  # the env's override
    assert app.headers == {"X-Tenant": "value-of-v_tenant", "X-Env": "value-of-v_env_header"}
    assert app.model.events["get"].query == {"expand": "value-of-v_expand"}
    assert components.storage("s").path == "value-of-v_store_dir"
    assert components.quota("q").per == 60_000
    note = components.notification("n")
    assert note.outbox == tmp_path / "value-of-v_outbox"
    assert note.smtp is not None and note.smtp.password == "value-of-v_password"
    # Secrets: the smtp password, the sms key header; not the smtp host, tenant or urls.
    assert (
        "value-of-v_password" in note.secret_values and "value-of-v_sms_key" in note.secret_values
    )
    assert (
        "value-of-v_smtp_host" not in note.secret_values
        and "value-of-v_push_channel" not in note.secret_values
    )
    assert app.secret_values == []


def test_storage_path_variable_makes_no_literal_folder(
    runtime: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STORE_DIR", str(tmp_path / "files"))
    rt = runtime('[storage.docs]\npath = "${STORE_DIR}/docs"\n')
    out = asyncio.run(
        rt.storage.upload(storage="docs", input={"fileName": "a.txt", "content": "hi"})
    )
    assert (tmp_path / "files" / "docs" / "a.txt").read_text() == "hi"
    assert out["file_key"] == "a.txt"
    assert not list(Path(rt.config.root).glob("$*"))


def test_a_host_variable_is_not_a_secret(
    make: Any, monkeypatch: pytest.MonkeyPatch, unused_port: int
) -> None:
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("PAY_TOKEN", "tok-31337-abc")
    engine = make(
        f"""
    [apps.api]
    base_url = "http://${{HOST}}:{unused_port}"
    headers = {{ Authorization = "Bearer ${{PAY_TOKEN}}" }}
    [apps.api.events.get]
    path = "/x"
    """,
        """
from ductape_cli import workflow

@workflow("call")
async def call(ctx):
    return await ctx.action.run(app="api", event="get")
""",
    )
    result = engine.run("call", {})
    assert result["status"] == "failed"
    assert f"cannot reach http://127.0.0.1:{unused_port}" in result["error"]["message"]


def test_a_variable_marked_secret_is_redacted(
    make: Any, monkeypatch: pytest.MonkeyPatch, http_server: Any, recorded: Any
) -> None:
    monkeypatch.setenv("SIGNING_KEY", "sign-8841-key")
    monkeypatch.setenv("REGION", "eu-west-9")
    engine = make(
        f"""
    [apps.api]
    base_url = "{http_server.url}"
    variables = {{ signing = "${{SIGNING_KEY}}", region = "${{REGION}}" }}
    secret = ["signing"]
    [apps.api.events.echo]
    method = "POST"
    path = "/echo"
    """,
        """
from ductape_cli import workflow

@workflow("sign")
async def sign(ctx):
    key, region = ctx.variable("api", "signing"), ctx.variable("api", "region")
    echoed = await ctx.action.run(app="api", event="echo", input={"body": {"note": f"signed {key} in {region}"}})
    return echoed["body"]
""",
    )
    result = engine.run("sign", {})
    assert result["status"] == "completed", result["error"]
    text = recorded(engine, result["workflow_id"])
    assert "sign-8841-key" not in text
    assert "eu-west-9" in text


def test_missing_variable_in_an_event_header_names_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOPE_UNSET", raising=False)
    path = tmp_path / "ductape.toml"
    path.write_text(
        textwrap.dedent("""\
        [apps.api]
        base_url = "http://x"
        [apps.api.events.get]
        path = "/x"
        headers = { X-Key = "${NOPE_UNSET}" }
    """),
        encoding="utf-8",
    )
    components: ComponentConfig = load_components(load_config(tmp_path))
    with pytest.raises(ConfigError) as info:
        components.app("api", "dev")
    assert (
        info.value.message
        == f"{path}:5: [apps.api.events.get] headers.X-Key: environment variable NOPE_UNSET is not set"
    )
