"""Components meet operations: ctx.action carries the step's trace context; exports keep secrets redacted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.services import need_module

TOKEN = "tok-5ecret-value-123"

CONFIG = """
[apps.api]
base_url = "{url}"
headers = {{ Authorization = "Bearer ${{TEST_API_TOKEN}}" }}
secret = ["card"]
[apps.api.events.create]
method = "POST"
path = "/echo"
"""

FLOW = """
    from ductape_cli import workflow

    @workflow("pay")
    async def pay(ctx):
        sent = await ctx.action.run(app="api", event="create", input={"body": {"card": "4242424242424242", "amount": 5},
                                                                       "headers": {"X-Api-Key": "key-abc-987"}})
        return {"status": "sent", "echo_path": sent["path"]}
"""


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_API_TOKEN", TOKEN)


def test_action_calls_carry_the_step_span_as_traceparent(make: Any, http_server: Any) -> None:
    need_module("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from ductape_cli.observe import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = make(CONFIG.format(url=http_server.url), FLOW)
    tracing.enable(engine, provider)
    result = engine.run("pay", {})
    assert result["status"] == "completed", result["error"]
    sent = next(r for r in reversed(http_server.requests) if r["path"] == "/echo")
    step = next(s for s in exporter.get_finished_spans() if s.name == "step action:api:create")
    version, trace_id, span_id, flags = sent["headers"]["traceparent"].split("-")
    assert version == "00" and int(flags, 16) & 1  # sampled
    assert int(trace_id, 16) == step.context.trace_id and int(span_id, 16) == step.context.span_id
    # Without tracing, no header is added.
    plain = make(CONFIG.format(url=http_server.url), FLOW)
    assert plain.run("pay", {})["status"] == "completed"
    assert (
        "traceparent"
        not in next(r for r in reversed(http_server.requests) if r["path"] == "/echo")["headers"]
    )


def test_an_export_holds_no_secret(make: Any, http_server: Any, project: Any, cli: Any) -> None:
    engine = make(CONFIG.format(url=http_server.url), FLOW)
    result = engine.run("pay", {})
    assert result["status"] == "completed", result["error"]
    sent = next(r for r in reversed(http_server.requests) if r["path"] == "/echo")
    assert (
        sent["headers"]["Authorization"] == f"Bearer {TOKEN}"
        and sent["body"]["card"] == "4242424242424242"
    )
    exported = cli("export", result["workflow_id"])
    assert exported.exit_code == 0, exported.stderr
    text = exported.stdout
    for secret in (TOKEN, "4242424242424242"):  # a ${VAR} header value and a `secret` field
        assert secret not in text
    data = json.loads(text)
    step = next(s for s in data["runs"][0]["steps"] if s["tag"] == "action:api:create")
    assert (
        step["input"]["input"]["body"]["card"] == "***"
        and step["input"]["input"]["headers"]["X-Api-Key"] == "***"
    )
    # The server echoed the card back: the component redacts its `secret` fields in the output too (#16).
    assert engine.store.load_journal(result["workflow_id"])[0].output["body"]["card"] == "***"
    assert step["output"]["body"] == {"card": "***", "amount": 5}
