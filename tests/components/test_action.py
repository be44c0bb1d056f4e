"""ctx.action against a real HTTP server: paths, headers, bodies, status codes, retries, timeouts, redaction."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ductape_cli.errors import ConfigError

TOKEN = "tok-5ecret-value-123"


def api(url: str, extra: str = "") -> str:
    return f"""
    [apps.api]
    base_url = "{url}"
    headers = {{ Authorization = "Bearer ${{TEST_API_TOKEN}}" }}
    variables = {{ api_version = "2024-01-01" }}
    constants = {{ currency = "usd" }}
    retry_delay = "10ms"
    secret = ["card"]
    [apps.api.envs.prd]
    variables = {{ api_version = "2025-06-01" }}
    [apps.api.events.get-item]
    method = "GET"
    path = "/items/{{id}}"
    headers = {{ X-Event = "get-item" }}
    query = {{ expand = "stock" }}
    [apps.api.events.create]
    method = "POST"
    path = "/echo"
    [apps.api.events.fail]
    method = "POST"
    path = "/status/{{code}}"
    [apps.api.events.flaky]
    method = "GET"
    path = "/flaky/{{key}}/{{failures}}"
    [apps.api.events.slow]
    path = "/slow/{{ms}}"
    [apps.api.events.text]
    path = "/text"
    {extra}
    """


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_API_TOKEN", TOKEN)


def test_path_params_query_and_headers_merge_and_secrets_stay_out_of_the_store(
    make: Any, http_server: Any, journal: Any, recorded: Any
) -> None:
    engine = make(
        api(http_server.url),
        """
        from ductape_cli import workflow

        @workflow("fetch")
        async def fetch(ctx):
            item = await ctx.action.run(app="api", event="get-item", input={
                "params": {"id": "sku 42/a"}, "query": {"page": 2},
                "headers": {"X-Request-ID": ctx.workflow_id, "X-Pay-Key": "pay-key-0042"},
            })
            return {"item": item, "version": ctx.variable("api", "api_version"), "currency": ctx.constant("api", "currency")}
    """,
    )
    result = engine.run("fetch", {})
    assert result["status"] == "completed", result["error"]
    seen = result["output"]["item"]
    assert seen["method"] == "GET"
    assert seen["path"] == "/items/sku%2042%2Fa"  # one path segment: the "/" is encoded
    assert seen["query"] == {"expand": "stock", "page": "2"}
    sent = next(r for r in reversed(http_server.requests) if r["path"] == seen["path"])
    assert sent["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert seen["headers"]["X-Event"] == "get-item"
    assert seen["headers"]["X-Request-ID"] == result["workflow_id"]
    assert result["output"]["version"] == "2024-01-01"
    assert result["output"]["currency"] == "usd"

    step = journal(engine, result["workflow_id"])["action:api:get-item"]
    assert step.input == {
        "app": "api",
        "event": "get-item",
        "input": {
            "params": {"id": "sku 42/a"},
            "query": {"page": 2},
            "headers": {"X-Request-ID": result["workflow_id"], "X-Pay-Key": "***"},
        },
    }  # only auth headers are secrets: a request id stays readable
    assert TOKEN not in recorded(engine, result["workflow_id"])
    assert "pay-key-0042" not in recorded(engine, result["workflow_id"])


def test_post_json_body_text_response_and_env_override(make: Any, http_server: Any) -> None:
    engine = make(
        api(http_server.url),
        """
        from ductape_cli import workflow

        @workflow("post")
        async def post(ctx):
            created = await ctx.action.run(app="api", event="create", input={"body": {"items": [1, 2], "ok": True}})
            text = await ctx.action.run(app="api", event="text")
            return {"body": created["body"], "text": text, "version": ctx.variable("api", "api_version")}
    """,
    )
    result = engine.run("post", {}, env="prd")
    assert result["status"] == "completed", result["error"]
    assert result["output"] == {
        "body": {"items": [1, 2], "ok": True},
        "text": "plain words",
        "version": "2025-06-01",
    }


def test_calls_share_one_tls_context(
    make: Any, http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading the CA bundle costs ~25 ms of CPU: once per process, not once per call."""
    import ssl

    from ductape_cli.components.tls import client_context

    built: list[Any] = []
    create = ssl.create_default_context
    monkeypatch.setattr(
        ssl, "create_default_context", lambda *a, **k: built.append(1) or create(*a, **k)
    )
    client_context.cache_clear()
    engine = make(
        api(http_server.url),
        """
        from ductape_cli import workflow

        @workflow("twice")
        async def twice(ctx):
            await ctx.action.run(app="api", event="text")
            return await ctx.action.run(app="api", event="text")
    """,
    )
    assert engine.run("twice", {})["output"] == "plain words"
    assert engine.run("twice", {})["output"] == "plain words"
    assert len(built) == 1 and client_context() is client_context()


def test_non_2xx_raises_action_error_with_status_and_body(
    make: Any, http_server: Any, recorded: Any
) -> None:
    engine = make(
        api(http_server.url),
        """
        from ductape_cli import workflow
        from ductape_cli.components import ActionError

        @workflow("caught")
        async def caught(ctx):
            try:
                await ctx.action.run(app="api", event="fail", input={"params": {"code": 503}, "body": {"card": "4242424242424242"}})
            except ActionError as exc:
                return {"message": str(exc), "status": exc.status_code, "body": exc.body}

        @workflow("uncaught")
        async def uncaught(ctx):
            await ctx.action.run(app="api", event="fail", input={"params": {"code": 409}})
    """,
    )
    result = engine.run("caught", {})
    assert result["status"] == "completed", result["error"]
    out = result["output"]
    assert out["status"] == 503
    assert out["message"].startswith("POST /status/503 -> 503: ")
    # The server echoed the card number back; `secret = ["card"]` scrubs it from the error.
    assert "4242424242424242" not in out["message"] and "***" in out["message"]
    assert out["body"] == {"error": "status 503", "echo": {"card": "***"}}
    assert "4242424242424242" not in recorded(
        engine, result["workflow_id"]
    )  # step input, error, history

    failed = engine.run("uncaught", {})
    assert failed["status"] == "failed"
    assert failed["failed_step"] == "action:api:fail"
    assert failed["error"]["code"] == "ACTION_ERROR"
    assert failed["error"]["message"].startswith("POST /status/409 -> 409")


def test_retries_happen_inside_the_call_and_skip_client_errors(
    make: Any, http_server: Any, journal: Any
) -> None:
    engine = make(
        api(http_server.url),
        """
        from ductape_cli import workflow
        from ductape_cli.components import ActionError

        @workflow("retry")
        async def retry(ctx):
            ok = await ctx.action.run(app="api", event="flaky", input={"params": {"key": ctx.input["key"], "failures": 2}}, retries=2)
            try:
                await ctx.action.run(app="api", event="fail", input={"params": {"code": 404}}, retries=3)
            except ActionError as exc:
                return {"ok": ok, "not_found": exc.status_code}
    """,
    )
    key = f"k{time.monotonic_ns()}"
    result = engine.run("retry", {"key": key})
    assert result["status"] == "completed", result["error"]
    assert result["output"] == {"ok": {"ok": True, "calls": 3}, "not_found": 404}
    assert http_server.count(f"/flaky/{key}/") == 3
    steps = journal(engine, result["workflow_id"])
    assert steps["action:api:flaky"].attempts == 1  # retried inside the call, not as step attempts
    assert steps["action:api:flaky"].input["retries"] == 2


def test_retries_exhausted_report_attempts(make: Any, http_server: Any) -> None:
    engine = make(
        api(http_server.url),
        """
        from ductape_cli import workflow

        @workflow("give-up")
        async def give_up(ctx):
            await ctx.action.run(app="api", event="flaky", input={"params": {"key": ctx.input["key"], "failures": 5}}, retries=1)
    """,
    )
    key = f"g{time.monotonic_ns()}"
    result = engine.run("give-up", {"key": key})
    assert result["status"] == "failed"
    assert result["error"]["message"].endswith("(after 2 attempts)")
    assert http_server.count(f"/flaky/{key}/") == 2


def test_timeout_per_call(make: Any, http_server: Any) -> None:
    engine = make(
        api(http_server.url),
        """
        from ductape_cli import workflow
        from ductape_cli.components import ActionError

        @workflow("slow")
        async def slow(ctx):
            try:
                await ctx.action.run(app="api", event="slow", input={"params": {"ms": 1500}}, timeout=150)
            except ActionError as exc:
                return {"message": str(exc), "status": exc.status_code}
    """,
    )
    started = time.monotonic()
    result = engine.run("slow", {})
    assert time.monotonic() - started < 1.2
    assert result["output"] == {
        "message": "GET /slow/1500 -> timed out after 150 ms",
        "status": None,
    }


def test_connection_errors_are_action_errors(make: Any, unused_port: int) -> None:
    engine = make(
        api(f"http://127.0.0.1:{unused_port}"),
        """
        from ductape_cli import workflow
        from ductape_cli.components import ActionError

        @workflow("down")
        async def down(ctx):
            try:
                await ctx.action.run(app="api", event="text")
            except ActionError as exc:
                return {"message": str(exc), "status": exc.status_code}
    """,
    )
    result = engine.run("down", {})
    assert result["output"]["status"] is None
    assert result["output"]["message"].startswith("GET /text -> cannot reach http://127.0.0.1:")


def test_inside_a_step_the_call_is_part_of_that_step(
    make: Any, http_server: Any, journal: Any
) -> None:
    engine = make(
        api(http_server.url),
        """
        from ductape_cli import workflow

        @workflow("in-step")
        async def in_step(ctx):
            return await ctx.step("fetch", lambda: ctx.action.run(app="api", event="text"))
    """,
    )
    result = engine.run("in-step", {})
    assert result["output"] == "plain words"
    assert list(journal(engine, result["workflow_id"])) == ["fetch"]


def test_repeats_get_numbered_tags_and_replay_does_not_call_again(
    make: Any, http_server: Any, journal: Any
) -> None:
    engine = make(
        api(http_server.url),
        """
        from ductape_cli import workflow

        @workflow("twice", signals={"go": {}})
        async def twice(ctx):
            first = await ctx.action.run(app="api", event="flaky", input={"params": {"key": ctx.input["key"], "failures": 0}})
            second = await ctx.action.run(app="api", event="flaky", input={"params": {"key": ctx.input["key"], "failures": 0}})
            await ctx.wait_for_signal("go")
            return [first["calls"], second["calls"]]
    """,
    )
    key = f"r{time.monotonic_ns()}"
    started = engine.run("twice", {"key": key})
    assert started["status"] == "running"
    result = engine.signal(started["workflow_id"], "go", {})
    assert result["status"] == "completed", result["error"]
    assert result["output"] == [1, 2]
    assert http_server.count(f"/flaky/{key}/") == 2  # the second execution replayed both calls
    tags = [t for t in journal(engine, result["workflow_id"]) if t.startswith("action:")]
    assert tags == ["action:api:flaky", "action:api:flaky#2"]


def test_sync_handler_blocks_on_component_calls(make: Any, http_server: Any) -> None:
    engine = make(
        api(http_server.url),
        """
        from ductape_cli import workflow

        @workflow("sync")
        def sync(ctx):
            text = ctx.action.run(app="api", event="text")
            in_step = ctx.step("again", lambda: ctx.action.run(app="api", event="text"), timeout="2s")
            return [text, in_step]
    """,
    )
    result = engine.run("sync", {})
    assert result["status"] == "completed", result["error"]
    assert result["output"] == ["plain words", "plain words"]


def test_seed_style_single_options_object(make: Any, http_server: Any) -> None:
    engine = make(
        api(http_server.url),
        """
        from ductape_cli import workflow

        @workflow("seed")
        async def seed(ctx):
            return await ctx.action.run({"app": "api", "event": "create", "input": {"body": {"a": 1}}, "retries": 1})
    """,
    )
    result = engine.run("seed", {})
    assert result["output"]["body"] == {"a": 1}


def test_bad_calls_fail_clearly_before_any_request(make: Any, http_server: Any) -> None:
    engine = make(
        api(http_server.url),
        """
        from ductape_cli import workflow

        @workflow("bad", )
        async def bad(ctx):
            kind = ctx.input["kind"]
            if kind == "param":
                await ctx.action.run(app="api", event="get-item", input={})
            elif kind == "key":
                await ctx.action.run(app="api", event="create", input={"amount": 1})
            elif kind == "event":
                await ctx.action.run(app="api", event="nope")
            elif kind == "app":
                await ctx.action.run(app="nope", event="x")
            elif kind == "variable":
                ctx.variable("api", "nope")
    """,
    )
    toml = engine.config.path
    expected = {
        "param": "path /items/{id} needs input.params.id",
        "key": "unknown input key(s) amount",
        "event": f"{toml}:{_line(toml, '[apps.api]')}: [apps.api] no event 'nope' (declared: create, fail, flaky, get-item, slow, text)",
        "app": "no [apps.nope] declared (apps: api)",
        "variable": "[apps.api] no variable 'nope' (declared: api_version)",
    }
    for kind, fragment in expected.items():
        result = engine.run("bad", {"kind": kind})
        assert result["status"] == "failed"
        assert fragment in result["error"]["message"], (kind, result["error"])


def test_missing_env_var_names_file_table_and_line(
    make: Any, http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_API_TOKEN")
    engine = make(api(http_server.url))
    from ductape_cli.components import ComponentRuntime

    runtime = ComponentRuntime(engine.config)
    with pytest.raises(ConfigError) as info:
        runtime.action.run(app="api", event="text")
    path = engine.config.path
    line = _line(path, "headers = { Authorization")
    assert (
        info.value.message
        == f"{path}:{line}: [apps.api] headers.Authorization: environment variable TEST_API_TOKEN is not set"
    )


def _line(path: Any, needle: str) -> int:
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if needle in text:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def test_parallel_calls_and_raw_bodies(make: Any, http_server: Any, journal: Any) -> None:
    engine = make(
        api(http_server.url),
        """
        from ductape_cli import workflow

        @workflow("par")
        async def par(ctx):
            text, echo = await ctx.parallel([
                ctx.action.run(app="api", event="text"),
                ctx.action.run(app="api", event="create", input={"body": b"raw bytes"}),
            ])
            return [text, echo["body"]]
    """,
    )
    result = engine.run("par", {})
    assert result["status"] == "completed", result["error"]
    assert result["output"] == ["plain words", "raw bytes"]
    steps = journal(engine, result["workflow_id"])
    assert list(steps) == ["action:api:text", "action:api:create"]
    assert steps["action:api:create"].input["input"] == {"body": "<9 bytes>"}


def test_misspelt_arguments_are_invalid_input(runtime: Any) -> None:
    from ductape_cli.errors import InvalidInput

    rt = runtime(api("http://127.0.0.1:1"))
    with pytest.raises(InvalidInput, match=r"ctx.action.run: .*unexpected keyword argument 'evnt'"):
        rt.action.run(app="api", evnt="text")
