"""ctx.messaging topics (and `ductape topics`), ctx.quota buckets shared across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ductape_cli.errors import ConfigError, InvalidInput

REPO = Path(__file__).resolve().parents[2]

TABLES = """
[brokers.order-events]
topics = ["order-created", "order-shipped"]

[quotas.api-rate-limit]
limit = 3
per = "1h"
"""


def test_produce_appends_to_declared_topics(make: Any) -> None:
    engine = make(
        TABLES,
        """
        from ductape_cli import workflow

        @workflow("publish")
        async def publish(ctx):
            first = await ctx.messaging.produce(event="order-events:order-created", message={"orderId": ctx.input["id"]})
            second = await ctx.messaging.produce(event="order-events:order-created", message={"orderId": ctx.input["id"] + 1})
            return [first, second]
    """,
    )
    result = engine.run("publish", {"id": 1})
    assert result["status"] == "completed", result["error"]
    run_id = result["workflow_id"]
    assert result["output"] == [
        {
            "offset": 0,
            "broker": "order-events",
            "topic": "order-created",
            "message_id": f"{run_id}:messaging:order-events:order-created",
        },
        {
            "offset": 1,
            "broker": "order-events",
            "topic": "order-created",
            "message_id": f"{run_id}:messaging:order-events:order-created#2",
        },
    ]
    messages = engine.store.read_messages("order-events", "order-created")
    assert [m["message"] for m in messages] == [{"orderId": 1}, {"orderId": 2}]
    assert [m["message_id"] for m in messages] == [o["message_id"] for o in result["output"]]
    assert {m["run_id"] for m in messages} == {result["workflow_id"]}


def test_undeclared_topics_and_bad_messages_are_refused(runtime: Any) -> None:
    rt = runtime(TABLES)
    with pytest.raises(
        ConfigError, match=r":\d+: \[brokers.order-events\] topic 'order-lost' is not declared"
    ):
        rt.messaging.produce(event="order-events:order-lost", message={})
    with pytest.raises(ConfigError, match=r"no \[brokers.nope\] declared"):
        rt.messaging.produce(event="nope:x", message={})
    with pytest.raises(InvalidInput, match="'broker:topic'"):
        rt.messaging.produce(event="order-created", message={})
    with pytest.raises(InvalidInput, match="JSON-serialisable"):
        rt.messaging.produce(event="order-events:order-created", message={"when": object()})


def _cli(args: list[str]) -> Any:
    from ductape_cli.cli import topic_cmds

    app = typer.Typer()
    topic_cmds.register(app)
    return CliRunner().invoke(app, args, catch_exceptions=False)


def test_topics_list_and_tail(runtime: Any) -> None:
    import asyncio

    rt = runtime(TABLES)
    for n in range(3):
        asyncio.run(rt.messaging.produce(event="order-events:order-shipped", message={"n": n}))
    listed = _cli(["topics", "list", "--json"])
    assert listed.exit_code == 0
    assert [
        (t["broker"], t["type"], t["topic"], t["messages"]) for t in json.loads(listed.stdout)
    ] == [
        ("order-events", "local", "order-created", 0),
        ("order-events", "local", "order-shipped", 3),
    ]
    tail = _cli(["topics", "tail", "order-events:order-shipped", "--from-offset", "1", "--json"])
    assert tail.exit_code == 0
    assert [(m["position"], m["message"]) for m in json.loads(tail.stdout)] == [
        (1, {"n": 1}),
        (2, {"n": 2}),
    ]
    assert (
        _cli(
            ["topics", "tail", "order-events:order-shipped", "--from", "2", "--json"]
        ).stdout.count('"n": 2')
        == 1
    )
    plain = _cli(["topics", "tail", "order-events:order-shipped"])
    assert plain.exit_code == 0 and plain.stdout.count("\n") == 3 and '{"n": 2}' in plain.stdout
    assert _cli(["topics", "tail", "order-events:order-created"]).stdout == ""  # declared, empty
    unknown = _cli(["topics", "tail", "order-events:nope"])
    assert unknown.exit_code == 2


def test_components_check_lists_tables_and_reports_unset_vars(
    runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UNSET_TOKEN_FOR_TEST", raising=False)
    runtime(
        TABLES
        + """
    [apps.api]
    base_url = "http://127.0.0.1:1"
    headers = { Authorization = "${UNSET_TOKEN_FOR_TEST}" }
    """
    )
    result = _cli(["components", "check", "--json"])
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert [(c["table"], c["name"]) for c in report["components"]] == [
        ("apps", "api"),
        ("brokers", "order-events"),
        ("quotas", "api-rate-limit"),
    ]
    toml = Path.cwd().resolve() / "ductape.toml"
    line = next(
        n
        for n, text in enumerate(toml.read_text().splitlines(), 1)
        if "UNSET_TOKEN_FOR_TEST" in text
    )
    assert report["problems"] == [
        f"{toml}:{line}: [apps.api] headers.Authorization: environment variable UNSET_TOKEN_FOR_TEST is not set"
    ]


def test_quota_in_a_workflow(make: Any) -> None:
    engine = make(
        TABLES,
        """
        from ductape_cli import workflow

        @workflow("limited")
        async def limited(ctx):
            results = []
            for _ in range(4):
                results.append(await ctx.quota.execute(quota="api-rate-limit", input={"key": ctx.input["user"]}))
            other = await ctx.quota.execute(quota="api-rate-limit", input={"key": "someone-else"})
            return {"results": results, "other": other}
    """,
    )
    result = engine.run("limited", {"user": "u1"})
    assert result["status"] == "completed", result["error"]
    results = result["output"]["results"]
    assert [r["allowed"] for r in results] == [True, True, True, False]
    assert [r["remaining"] for r in results] == [2, 1, 0, 0]
    assert results[0]["limit"] == 3 and isinstance(results[0]["reset_at"], int)
    assert result["output"]["other"]["allowed"] is True


QUOTA_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from ductape_cli.components import ComponentRuntime
from ductape_cli.config import load_config

runtime = ComponentRuntime(load_config(Path(sys.argv[1])))
sys.stdin.readline()  # start together
taken = [asyncio.run(runtime.quota.execute(quota="api-rate-limit", input={"key": "shared"}))["allowed"] for _ in range(4)]
print(json.dumps(taken))
"""


def test_quota_is_shared_by_two_processes(runtime: Any) -> None:
    rt = runtime(TABLES)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("DUCTAPE_STORE", None)
    script = textwrap.dedent(QUOTA_SCRIPT)
    command = [sys.executable, "-c", script, str(rt.config.root)]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    workers = [subprocess.Popen(command, text=True, env=env, **pipes) for _ in range(2)]
    outputs = [w.communicate("go\n", timeout=30) for w in workers]
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
    allowed = [flag for stdout, _ in outputs for flag in json.loads(stdout)]
    assert len(allowed) == 8
    assert sum(allowed) == 3  # limit 3 per hour, whichever process asked
