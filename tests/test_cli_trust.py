"""The command line a user trusts (issue 15, items 3-17): through the real CLI, on tmp projects."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

FLOW = '''
from pathlib import Path

from ductape_cli import workflow


def flaky():
    marker = Path("flaky.count")
    count = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(count + 1))
    if count == 0:
        raise RuntimeError("first attempt fails")
    return {"ok": True}


@workflow("flow", rollback_strategy="none", signals={"go": {}},
          record_input={"skip_b": False, "wait": False, "retry": False})
async def flow(ctx):
    ctx.log.info("starting flow", {"n": 1})
    await ctx.step("a", lambda: {"a": 1})
    ctx.emit_event("charged", {"id": "ch_1", "ok": True})
    if not ctx.input.skip_b:
        await ctx.step("b", lambda: {"b": 1})
    if ctx.input.retry:
        await ctx.step("flaky", flaky, retries=2, retry_delay="20ms")
    if ctx.input.wait:
        await ctx.wait_for_signal("go")
    await ctx.step("c", lambda: {"c": 1})
    ctx.log.warn("done")
    return {"done": True}
'''


@pytest.fixture
def flow(project: Any) -> Any:
    project.write("flow", FLOW)
    return project


def start(cli: Any, payload: dict[str, Any]) -> str:
    return str(json.loads(cli("run", "flow", "--input", json.dumps(payload), "--json").stdout)["workflow_id"])


# -- item 3: events prints JSON payloads and ISO times --------------------------------------


def test_events_prints_json_payloads_and_iso_times(flow: Any, cli: Any) -> None:
    run_id = start(cli, {})
    lines = cli("events", run_id).stdout.strip().splitlines()
    assert len(lines) == 1
    assert ISO.match(lines[0]) and "charged" in lines[0] and '{"id": "ch_1", "ok": true}' in lines[0]
    data = cli("events", run_id, "--json").json()
    assert ISO.fullmatch(data[0]["timestamp"]) and data[0]["payload"] == {"id": "ch_1", "ok": True}


# -- item 4: every attempt has a start and a duration ----------------------------------------


def test_step_json_gives_every_attempt_a_start_and_duration(flow: Any, cli: Any) -> None:
    run_id = start(cli, {"retry": True})
    step = cli("step", run_id, "flaky", "--json").json()
    assert step["attempts"] == 2 and [a["attempt"] for a in step["attempt_log"]] == [1, 2]
    for attempt in step["attempt_log"]:
        assert attempt["started_at"] is not None and attempt["duration"] is not None, attempt
    first, second = step["attempt_log"]
    assert second["started_at"] >= first["started_at"] + 0.02  # after the failed attempt and its retry delay
    assert second["started_at"] <= step["ended_at"]
    assert "started_at" in step and step["duration"] is not None


# -- item 5: a waiting run's time, a cancelled wait, compiled order --------------------------


def test_a_waiting_run_shows_how_long_it_has_run_and_a_cancelled_wait_is_not_waiting(flow: Any, cli: Any) -> None:
    waiting = cli("run", "flow", "--input", '{"wait": true}')
    assert waiting.exit_code == 5
    assert "time: 0ms" not in waiting.stdout
    run_id = re.search(r"run: (\S+)", waiting.stdout).group(1)  # type: ignore[union-attr]
    status = cli("status", run_id).stdout
    assert "time: 0ms" not in status and re.search(r"time: \S+ so far", status), status
    assert "◷ signal go" in status
    cli("cancel", run_id, "--reason", "no longer needed")
    after = cli("status", run_id)
    assert after.exit_code == 4
    assert "◷" not in after.stdout and "■ signal go" in after.stdout, after.stdout
    steps = cli("status", run_id, "--json").json()["steps"]
    assert [s["status"] for s in steps if s["tag"] == "go"] == ["cancelled"]


def test_steps_never_reached_are_listed_in_compiled_order(flow: Any, cli: Any) -> None:
    run_id = start(cli, {"skip_b": True})
    steps = cli("status", run_id, "--json").json()["steps"]
    assert [s["tag"] for s in steps if s["kind"] == "step"] == ["a", "b", "c"]
    assert steps[1]["status"] == "skipped" and steps[1]["reason"].startswith("not reached")
    plain = cli("status", run_id).stdout
    assert [line.split()[1] for line in plain.splitlines() if line.startswith("  ") and line.split()[1] in "abc"] == ["a", "b", "c"]


# -- item 6: ctx.log while following a run ---------------------------------------------------


def test_run_shows_log_messages_in_plain_lines(flow: Any, cli: Any) -> None:
    out = cli("run", "flow").stdout
    assert 'info: starting flow {"n": 1}' in out and "warn: done" in out
    assert out.index("info: starting flow") < out.index("✓ a") < out.index("warn: done")


def test_run_shows_log_messages_in_the_live_view(flow: Any, cli: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "160")
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", cli("run", "flow").stdout)
    assert 'info: starting flow {"n": 1}' in out and "warn: done" in out


# -- item 17: ctx.input names like dict methods: one rule --------------------------------------

INPUT_RULE = '''
import json

from ductape_cli import workflow


@workflow("fields", record_input={"keys": ["k"], "items": None})
async def fields(ctx):
    return {
        "items": ctx.default(ctx.input.items, []),
        "get": ctx.input.get,
        "keys": ctx.input.keys,
        "copy": ctx.input.copy,
        "as_dict": sorted(ctx.input.to_dict().keys()),
        "via_dict": sorted(dict(ctx.input)),
        "json": json.loads(json.dumps(ctx.input)),
        "missing": ctx.input.to_dict().get("nope", "fallback"),
    }
'''


def test_input_fields_named_like_dict_methods_follow_one_rule(project: Any, cli: Any) -> None:
    project.write("fields", INPUT_RULE)
    result = cli("run", "fields", "--input", '{"keys": ["k1"], "copy": {"n": 1}}', "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.json()["output"] == {
        "items": [], "get": None, "keys": ["k1"], "copy": {"n": 1}, "as_dict": ["copy", "keys"],
        "via_dict": ["copy", "keys"], "json": {"keys": ["k1"], "copy": {"n": 1}}, "missing": "fallback",
    }  # fmt: skip
    assert cli("define").exit_code == 0
