"""ductape.toml's component tables are checked before anything runs; define warns about undeclared names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CONFIG = """\
[project]
name = "checks"
default_env = "dev"
[envs.dev]
[envs.prd]

[apps.api]
{base_url} = "http://127.0.0.1:1"
[apps.api.envs.prd]
headers = {{ Authorization = "Bearer ${{PRD_TOKEN_UNSET_FOR_TEST}}" }}
[apps.api.events.get]
path = "/x"
"""

FLOW = """
from pathlib import Path
from ductape_cli import workflow

def side_effect():
    with open(Path(__file__).parent.parent / "side-effects.txt", "a") as f:
        f.write("charged\\n")
    return {"ok": True}

@workflow("charge")
async def charge(ctx):
    await ctx.step("charge-card", side_effect)
    return await ctx.action.run(app="api", event="get")
"""


@pytest.fixture
def checks_project(project: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("PRD_TOKEN_UNSET_FOR_TEST", raising=False)
    project.write("charge", FLOW)
    return project


def _config(project: Any, key: str = "base_url", extra: str = "") -> Path:
    path = project.root / "ductape.toml"
    path.write_text(CONFIG.format(base_url=key) + extra, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "command", [["run", "charge"], ["define"], ["define", "--check"], ["worker", "--once"], ["dev"]]
)
def test_a_misspelt_key_stops_the_command_before_anything_runs(
    checks_project: Any, cli: Any, command: list[str]
) -> None:
    path = _config(checks_project, key="base_ulr")
    result = cli(*command)
    assert result.exit_code == 2, result.stdout + result.stderr
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "base_ulr" in text)
    assert result.stderr.startswith(f"ductape: {path}:{line}: [apps.api] unknown key 'base_ulr'")
    assert "Traceback" not in result.stderr
    assert not (checks_project.root / "side-effects.txt").exists()
    assert not checks_project.store.exists()


def test_an_unset_variable_of_the_chosen_env_stops_run(checks_project: Any, cli: Any) -> None:
    path = _config(checks_project)
    result = cli("run", "charge", "--env", "prd")
    assert result.exit_code == 2, result.stdout + result.stderr
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "PRD_TOKEN" in text)
    assert result.stderr.strip() == (
        f"ductape: {path}:{line}: [apps.api.envs.prd] headers.Authorization: "
        "environment variable PRD_TOKEN_UNSET_FOR_TEST is not set"
    )
    assert not (checks_project.root / "side-effects.txt").exists()
    assert not checks_project.store.exists()
    # dev does not need it: the run gets as far as the (unreachable) app.
    dev = cli("run", "charge", "--json")
    assert dev.exit_code == 1
    assert (checks_project.root / "side-effects.txt").read_text() == "charged\n"


def test_a_value_invalid_once_filled_is_caught_up_front(
    checks_project: Any, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_URL_FOR_TEST", "ftp://nope")
    path = checks_project.root / "ductape.toml"
    path.write_text(
        CONFIG.format(base_url="base_url").replace('"http://127.0.0.1:1"', '"${API_URL_FOR_TEST}"'),
        encoding="utf-8",
    )
    result = cli("run", "charge")
    assert result.exit_code == 2
    assert "base_url must start with http:// or https://, got 'ftp://nope'" in result.stderr
    assert not checks_project.store.exists()
    check = cli("components", "check", "--json")
    assert check.exit_code == 2
    assert any("ftp://nope" in p for p in check.json()["problems"])


UNDECLARED = """
from ductape_cli import workflow

@workflow("calls")
async def calls(ctx):
    await ctx.action.run(app="crm", event="note")
    await ctx.action.run(app="api", event="post")
    await ctx.database.query(database="users", event="find")
    await ctx.storage.upload(storage="docs", input={"fileName": "a", "content": "b"})
    await ctx.messaging.produce(event="orders:created", message={})
    await ctx.quota.execute(quota="limits")
    await ctx.action.run(app=ctx.input["app"], event="get")
    await ctx.notification.sms(notification="mail", event="hi", phones=["+1"], message={})
"""


def test_define_warns_about_calls_to_undeclared_components(checks_project: Any, cli: Any) -> None:
    _config(
        checks_project,
        extra='[notifications.mail]\nsmtp = { host = "127.0.0.1", from = "a@b.c" }\n'
        '[notifications.mail.events.hi]\nmessage = "hi"\n',
    )
    checks_project.write("calls", UNDECLARED)
    result = cli("define", "--json")
    assert result.exit_code == 0, result.stderr
    warnings = result.json()["warnings"]
    assert [w.split(": ", 1)[1] for w in warnings] == [
        "ctx.action names app 'crm', which is not declared in [apps]",
        "ctx.action names event 'post', which [apps.api] does not declare",
        "ctx.database names database 'users', which is not declared in [databases]",
        "ctx.storage names storage 'docs', which is not declared in [storage]",
        "ctx.messaging names broker 'orders', which is not declared in [brokers]",
        "ctx.quota names quota 'limits', which is not declared in [quotas]",
        "ctx.notification.sms sends sms, but [notifications.mail] has no sms or outbox",
    ]
    assert all(w.startswith("workflow 'calls' at workflows/calls.py:") for w in warnings)
    plain = cli("define")
    assert (
        "ductape: warning: workflow 'calls' at workflows/calls.py:6: ctx.action names app 'crm'"
        in plain.stderr
    )
    check = cli("components", "check", "--json")
    assert check.exit_code == 2
    assert len(check.json()["problems"]) == 7
