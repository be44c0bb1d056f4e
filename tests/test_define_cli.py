"""`ductape define / show / workflows` through the CLI runner, and compiled conditions at run time."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from typing import Any

import pytest

ORDERS = """\
from ductape_cli import workflow


@workflow("order-fulfillment", name="Order Fulfillment", branch_overrides={"validate": {"valid": True}})
async def order_fulfillment(ctx):
    validation = await ctx.step("validate", lambda: {"valid": ctx.input["ok"], "reason": "out of stock"})
    if not validation["valid"]:
        return {"success": False, "error": validation["reason"]}
    payment = await ctx.step("process-payment", lambda: {"id": "ch_1"}, rollback=lambda out: None, retries=2, retry_delay="1s")
    return {"success": True, "chargeId": payment["id"]}
"""

BATCH = """\
from ductape_cli import workflow


@workflow("process-orders", record_input={"items": [{"id": "1"}, {"id": "2"}]})
async def process_orders(ctx):
    for item in ctx.input["items"]:
        await ctx.step(f"process-{item['id']}", lambda: {"done": True})
    await ctx.sleep("10ms")


@workflow("handle-by-type", record_scenarios=[{"type": "a"}, {"type": "b"}])
async def handle_by_type(ctx):
    match ctx.input["type"]:
        case "a":
            await ctx.step("handle-a", lambda: "a")
        case "b":
            await ctx.step("handle-b", lambda: "b")
"""


@pytest.fixture(autouse=True)
def _define_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the define commands if app.py does not list them yet; never reuse stale bytecode."""
    from ductape_cli.cli import define_cmds
    from ductape_cli.cli.app import app

    names = {c.name or getattr(c.callback, "__name__", "") for c in app.registered_commands}
    if "define" not in names:
        define_cmds.register(app)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)


def stored(project: Any) -> list[tuple[str, str]]:
    if not project.store.exists():
        return []
    with sqlite3.connect(project.store) as conn:
        return sorted(conn.execute("SELECT tag, version FROM definitions").fetchall())


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("ductape: ")
    return lines[0]


# -- define ------------------------------------------------------------------------------------------


def test_define_prints_trees_and_stores_one_version_each(
    project: Any, cli: Callable[..., Any]
) -> None:
    project.write("orders", ORDERS)
    project.write("batch", BATCH)
    result = cli("define")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "order-fulfillment" in out and "new" in out
    assert "process-payment  if $Step{validate}{valid} == true  ↺ rollback" in out
    assert "handle-a  if $Input{type} == 'a'" in out and "handle-b  if $Input{type} == 'b'" in out
    assert "process-1" in out and "process-2" in out and "sleep" in out
    assert "3 workflows in workflows: 3 new" in out
    assert [tag for tag, _ in stored(project)] == [
        "handle-by-type",
        "order-fulfillment",
        "process-orders",
    ]


def test_define_twice_stores_nothing_new(project: Any, cli: Callable[..., Any]) -> None:
    project.write("orders", ORDERS)
    assert cli("define").exit_code == 0
    before = stored(project)
    again = cli("define")
    assert again.exit_code == 0 and "unchanged" in again.stdout
    assert stored(project) == before and len(before) == 1


def test_define_shows_what_changed(project: Any, cli: Callable[..., Any]) -> None:
    project.write("orders", ORDERS)
    assert cli("define").exit_code == 0
    project.write(
        "orders",
        ORDERS.replace('retries=2, retry_delay="1s"', 'retries=5, retry_delay="1s"').replace(
            '    return {"success": True',
            '    await ctx.step("notify", lambda: 1)\n    return {"success": True',
        ),
    )
    result = cli("define", "--json")
    assert result.exit_code == 0
    (item,) = result.json()["workflows"]
    assert item["status"] == "changed" and item["previous_version"] != item["version"]
    assert item["changes"]["added"] == ["notify"]
    assert item["changes"]["changed"] == {"process-payment": ["retries"]}
    assert len(stored(project)) == 2
    text = cli("define")
    assert "unchanged" in text.stdout
    project.write("orders", ORDERS.replace("retries=2, ", ""))
    text = cli("define")
    flat = " ".join(text.stdout.replace("│", " ").split())
    assert "changed (was v" in flat and "~ changed: retries, retry_delay_ms" in flat
    assert "- notify removed" in flat


def test_define_json_prints_schemas(project: Any, cli: Callable[..., Any]) -> None:
    project.write("orders", ORDERS)
    data = cli("define", "--json").json()
    assert data["ok"] is True and data["errors"] == []
    schema = data["workflows"][0]["schema"]
    assert (
        schema["tag"] == "order-fulfillment"
        and schema["version"] == data["workflows"][0]["version"]
    )
    payment = schema["steps"][1]
    assert payment == {
        "kind": "step",
        "tag": "process-payment",
        "options": {"retries": 2, "retry_delay_ms": 1000},
        "has_rollback": True,
        "critical": False,
        "allow_fail": False,
        "condition": "$Step{validate}{valid} == true",
        "explicit_condition": False,
        "dynamic": False,
        "source": payment["source"],
    }
    assert payment["source"].endswith("workflows/orders.py:9")


# -- define --check ------------------------------------------------------------------------------------


def test_check_exit_codes_and_it_writes_nothing(project: Any, cli: Callable[..., Any]) -> None:
    project.write("orders", ORDERS)
    missing = cli("define", "--check")
    assert missing.exit_code == 1 and "missing" in missing.stdout
    assert not project.store.exists()
    assert cli("define").exit_code == 0
    fresh = cli("define", "--check")
    assert fresh.exit_code == 0 and "fresh" in fresh.stdout
    before = stored(project)
    project.write("orders", ORDERS.replace("retries=2", "retries=3"))
    stale = cli("define", "--check", "--json")
    assert stale.exit_code == 1
    assert stale.json()["workflows"][0]["status"] == "stale"
    assert stored(project) == before
    project.write("orders", ORDERS + "\n# a comment changes the source, not the definition\n")
    assert cli("define", "--check").exit_code == 0


def test_check_fails_when_a_workflow_does_not_compile(
    project: Any, cli: Callable[..., Any]
) -> None:
    project.write("orders", ORDERS)
    assert cli("define").exit_code == 0
    project.write("orders", ORDERS.replace('retry_delay="1s"', 'retry_delay="1x"'))
    result = cli("define", "--check")
    assert result.exit_code == 1
    assert "invalid retry_delay '1x'" in one_error_line(result.stderr)


# -- bad input -------------------------------------------------------------------------------------------

BAD_MODULES = {
    "syntax": ("def broken(:\n    pass\n", ["workflows/syntax.py:1", "SyntaxError"]),
    "import": (
        "import json\n\nraise RuntimeError('config missing')\n",
        ["workflows/import.py:3", "RuntimeError: config missing"],
    ),
    "placeholder": (
        "from ductape_cli import workflow\n\n\n@workflow('needs-override')\nasync def h(ctx):\n"
        "    v = await ctx.step('validate', lambda: 1)\n    if v['valid']:\n        await ctx.step('next', lambda: 1)\n",
        [
            "workflow 'needs-override'",
            "TypeError",
            "workflows/placeholder.py:7",
            "$Step{validate}{valid}",
            "branch_overrides={'validate': {'valid': ...}}",
        ],
    ),
    "raises": (
        "from ductape_cli import workflow\n\n\n@workflow('raiser')\ndef h(ctx):\n    ctx.step('a', lambda: 1)\n"
        "    raise KeyError('gone')\n",
        ["workflow 'raiser' raised KeyError while recording at workflows/raises.py:7", "'gone'"],
    ),
    "sleep": (
        "from ductape_cli import workflow\n\n\n@workflow('sleepy')\nasync def h(ctx):\n    await ctx.sleep('5x')\n",
        ["workflow 'sleepy' at workflows/sleep.py:6", "invalid sleep duration '5x'"],
    ),
    "loop": (
        "from ductape_cli import workflow\n\n\n@workflow('looper')\nasync def h(ctx):\n"
        "    for item in ctx.input.items:\n        await ctx.step(item.id, lambda: 1)\n    top = max(ctx.input.prices)\n",
        [
            "workflow 'looper' raised ValueError",
            "workflows/loop.py:8",
            "iterated over $Input{prices}",
            "record_input",
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_MODULES))
def test_bad_modules_are_one_line_errors_and_the_others_still_define(
    project: Any, cli: Callable[..., Any], name: str
) -> None:
    source, fragments = BAD_MODULES[name]
    project.write("orders", ORDERS)
    project.write(name, source)
    result = cli("define")
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    for fragment in fragments:
        assert fragment in line
    assert "Traceback" not in result.stderr
    assert [tag for tag, _ in stored(project)] == ["order-fulfillment"]


def test_duplicate_tags_name_both_files_and_neither_is_stored(
    project: Any, cli: Callable[..., Any]
) -> None:
    project.write("orders", ORDERS)
    project.write("orders_copy", ORDERS)
    project.write("batch", BATCH)
    result = cli("define")
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert "'order-fulfillment' is defined more than once" in line
    assert "workflows/orders.py:4" in line and "workflows/orders_copy.py:4" in line
    assert [tag for tag, _ in stored(project)] == ["handle-by-type", "process-orders"]


def test_malformed_condition_shows_the_caret_and_stores_nothing(
    project: Any, cli: Callable[..., Any]
) -> None:
    project.write(
        "cond",
        """\
        from ductape_cli import workflow


        @workflow("conditional")
        async def h(ctx):
            await ctx.step("charge", lambda: 1, condition="$Step{score}{value} >= 80 && $Input{role} != guest")
        """,
    )
    result = cli("define")
    assert result.exit_code == 2
    first, text, caret = result.stderr.rstrip("\n").splitlines()
    assert first.startswith(
        "ductape: workflow 'conditional' at workflows/cond.py:6: step 'charge': invalid condition"
    )
    assert "strings need quotes" in first
    assert caret.index("^") == text.index("guest")
    assert stored(project) == []


def test_missing_workflows_folder_is_a_config_error(project: Any, cli: Callable[..., Any]) -> None:
    (project.root / "workflows").rmdir()
    result = cli("define")
    assert result.exit_code == 2 and "workflows folder workflows does not exist" in one_error_line(
        result.stderr
    )


# -- show and workflows -----------------------------------------------------------------------------------


def test_show_and_workflows(project: Any, cli: Callable[..., Any]) -> None:
    project.write("orders", ORDERS)
    cli("define")
    first_version = stored(project)[0][1]
    project.write("orders", ORDERS.replace("retries=2", "retries=4"))
    cli("define")
    shown = cli("show", "order-fulfillment")
    assert shown.exit_code == 0
    assert (
        "process-payment" in shown.stdout
        and "workflows/orders.py:9" in shown.stdout
        and "versions" in shown.stdout
    )
    old = cli("show", "order-fulfillment", "--version", first_version[:8], "--json").json()
    assert old["version"] == first_version and old["schema"]["steps"][1]["options"]["retries"] == 2
    assert len(old["versions"]) == 2
    rows = cli("workflows", "--json").json()
    assert [(r["tag"], r["name"], r["versions"], r["steps"]) for r in rows] == [
        ("order-fulfillment", "Order Fulfillment", 2, 2)
    ]
    assert (
        rows[0]["version"] != first_version and rows[0]["defined_at"] >= rows[0]["first_defined_at"]
    )
    table = cli("workflows")
    assert "order-fulfillment" in table.stdout and rows[0]["version"][:12] in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "nope"), "unknown workflow 'nope' (1 workflow stored"),
        (
            ("show", "order-fulfilment"),
            "unknown workflow 'order-fulfilment'; did you mean order-fulfillment?",
        ),
        (("show", "order-fulfillment", "--version", "zzz"), "has no version 'zzz'"),
    ],
)
def test_show_unknown_is_exit_2(
    project: Any, cli: Callable[..., Any], args: tuple[str, ...], message: str
) -> None:
    project.write("orders", ORDERS)
    cli("define")
    result = cli(*args)
    assert result.exit_code == 2 and message in one_error_line(result.stderr)


def test_workflows_with_nothing_defined(project: Any, cli: Callable[..., Any]) -> None:
    assert cli("workflows", "--json").json() == []
    assert "no workflows defined yet" in cli("workflows").stdout


# -- compiled conditions at run time ----------------------------------------------------------------------------


def test_order_fulfillment_skips_payment_when_validation_fails(project: Any) -> None:
    project.write("orders", ORDERS)
    engine = project.engine()
    result = engine.run("order-fulfillment", {"ok": False})
    assert result["status"] == "completed" and result["completed_steps"] == ["validate"]
    steps = {s["tag"]: s for s in engine.status(result["workflow_id"])["steps"]}
    assert steps["process-payment"]["status"] == "skipped"
    assert "$Step{validate}{valid} == true" in steps["process-payment"]["reason"]
    ok = engine.run("order-fulfillment", {"ok": True})
    assert ok["completed_steps"] == ["validate", "process-payment"]


def test_handle_by_type_runs_only_the_matching_step(project: Any) -> None:
    project.write("batch", BATCH)
    engine = project.engine()
    result = engine.run("handle-by-type", {"type": "b"})
    assert result["completed_steps"] == ["handle-b"]
    steps = {s["tag"]: s for s in engine.status(result["workflow_id"])["steps"]}
    assert (
        steps["handle-a"]["status"] == "skipped"
        and "$Input{type} == 'a'" in steps["handle-a"]["reason"]
    )
    batch = engine.run("process-orders", {"items": [{"id": "7"}]})
    assert batch["completed_steps"] == ["process-7"]
    statuses = {s["tag"]: s["status"] for s in engine.status(batch["workflow_id"])["steps"]}
    assert "process-1" not in statuses  # dynamic tags are not reported as unreached


def test_a_reached_step_runs_whatever_its_recorded_scenario_condition_says(project: Any) -> None:
    """Inferred conditions describe; the handler reaching a step decides (issue 13, item 16)."""
    project.write(
        "tiers",
        """\
        from ductape_cli import workflow


        @workflow("tiers", record_scenarios=[{"tier": "gold"}])
        async def tiers(ctx):
            if ctx.input["tier"] != "bronze":
                await ctx.step("perk", lambda: 1)
            await ctx.step("always", lambda: 2)
        """,
    )
    engine = project.engine()
    result = engine.run("tiers", {"tier": "silver"})
    assert result["completed_steps"] == ["perk", "always"]
    schema = engine.store.latest_definition("tiers")["schema"]
    assert {s["tag"]: s["condition"] for s in schema["steps"]} == {
        "perk": "$Input{tier} == 'gold'",
        "always": "$Input{tier} == 'gold'",
    }
    bronze = engine.run("tiers", {"tier": "bronze"})
    assert bronze["completed_steps"] == ["always"]


def test_explicit_condition_is_evaluated_at_run_time(project: Any) -> None:
    project.write(
        "score",
        """\
        from ductape_cli import workflow


        @workflow("scored")
        async def scored(ctx):
            await ctx.step("score", lambda: {"value": ctx.input["score"]})
            await ctx.step("charge", lambda: 1, condition="$Step{score}{value} >= 80 && $Input{role} != 'guest'")
        """,
    )
    engine = project.engine()
    low = engine.run("scored", {"score": 50, "role": "member"})
    high = engine.run("scored", {"score": 90, "role": "member"})
    assert low["completed_steps"] == ["score"] and high["completed_steps"] == ["score", "charge"]
    assert len(engine.store.list_definitions("scored")) == 1


def test_a_workflow_the_recorder_cannot_follow_still_runs(
    project: Any, cli: Callable[..., Any]
) -> None:
    project.write(
        "scores",
        """\
        from ductape_cli import workflow


        @workflow("scores")
        async def scores(ctx):
            score = await ctx.step("score", lambda: {"value": 90})
            if score["value"] > 80:
                await ctx.step("reward", lambda: 1)
        """,
    )
    result = project.engine().run("scores", {})
    assert result["status"] == "completed" and result["completed_steps"] == ["score", "reward"]
    shown = cli("show", "scores")
    assert "recording stopped early" in shown.stdout and "score" in shown.stdout
    define = cli("define")
    assert define.exit_code == 2 and "$Step{score}{value}" in one_error_line(define.stderr)


def test_runs_pin_the_version_they_started_with(project: Any, cli: Callable[..., Any]) -> None:
    project.write("orders", ORDERS)
    assert cli("define").exit_code == 0
    engine = project.engine()
    run = engine.run("order-fulfillment", {"ok": True})
    version = stored(project)[0][1]
    assert engine.status(run["workflow_id"])["version"] == version
