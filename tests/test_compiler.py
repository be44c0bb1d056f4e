"""The compiler: recording handlers into schemas, conditions, versions, and the runtime using them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ductape_cli import conditions, define, recording, workflow
from ductape_cli.compiler import compile_definition, source_hash_of, version_of
from ductape_cli.errors import DefinitionError


def steps_of(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["tag"]: s for s in schema["steps"]}


def compile_error(wf: Any) -> str:
    with pytest.raises(DefinitionError) as info:
        compile_definition(wf)
    return info.value.message


# -- the seed's three acceptance examples ----------------------------------------------------------


def check_order(items: Any) -> dict[str, Any]:
    raise AssertionError("step functions never run while recording")


@workflow(
    "order-fulfillment", name="Order Fulfillment", branch_overrides={"validate": {"valid": True}}
)
async def order_fulfillment(ctx: Any) -> Any:
    validation = await ctx.step("validate", lambda: check_order(ctx.input.items))
    if not validation["valid"]:
        return {"success": False, "error": validation.reason}
    payment = await ctx.step("process-payment", lambda: check_order(None))
    return {"success": True, "orderId": ctx.input.orderId, "chargeId": payment["id"]}


@workflow("process-orders", record_input={"items": [{"id": "1"}, {"id": "2"}]})
async def process_orders(ctx: Any) -> None:
    for item in ctx.input.items:
        await ctx.step(
            f"process-{item.id}",
            lambda: None,
            input={"id": item.id, "customer": ctx.input.customer},
        )


@workflow("handle-by-type", record_scenarios=[{"type": "a"}, {"type": "b"}])
async def handle_by_type(ctx: Any) -> None:
    match ctx.input.type:
        case "a":
            await ctx.step("handle-a", lambda: check_order(None))
        case "b":
            await ctx.step("handle-b", lambda: check_order(None))


def test_branch_overrides_record_later_steps_with_a_condition() -> None:
    steps = steps_of(compile_definition(order_fulfillment))
    assert list(steps) == ["validate", "process-payment"]
    assert steps["validate"]["condition"] is None
    assert steps["process-payment"]["condition"] == "$Step{validate}{valid} == true"
    assert steps["process-payment"]["explicit_condition"] is False


def test_record_input_runs_loops_and_keeps_missing_keys_as_placeholders() -> None:
    steps = steps_of(compile_definition(process_orders))
    assert list(steps) == ["process-1", "process-2"]
    assert steps["process-1"]["options"]["input"] == {"id": "1", "customer": "$Input{customer}"}
    assert all(s["dynamic"] for s in steps.values())


def test_record_scenarios_give_each_branch_its_input_condition() -> None:
    steps = steps_of(compile_definition(handle_by_type))
    assert steps["handle-a"]["condition"] == "$Input{type} == 'a'"
    assert steps["handle-b"]["condition"] == "$Input{type} == 'b'"


def test_steps_in_several_scenarios_keep_order_and_only_branch_steps_are_conditional() -> None:
    async def handler(ctx: Any) -> None:
        await ctx.step("start", lambda: 1)
        if ctx.input.plan == "pro":
            await ctx.step("pro-setup", lambda: 1)
        elif ctx.input.plan == "team":
            await ctx.step("team-setup", lambda: 1)
        await ctx.step("finish", lambda: 1)

    wf = define(
        tag="plans",
        handler=handler,
        record_scenarios=[{"plan": "pro"}, {"plan": "team"}, {"plan": "free"}],
    )
    schema = compile_definition(wf)
    assert [s["tag"] for s in schema["steps"]] == ["start", "pro-setup", "team-setup", "finish"]
    steps = steps_of(schema)
    assert (
        steps["finish"]["condition"] is None
    )  # reached in every scenario: it depends on none of them
    assert steps["team-setup"]["condition"] == "$Input{plan} == 'team'"


def test_scenario_and_override_conditions_combine() -> None:
    async def handler(ctx: Any) -> None:
        if ctx.input.kind == "card":
            check = await ctx.step("check", lambda: 1)
            if not check["ok"]:
                return
            await ctx.step("charge", lambda: 1)

    wf = define(
        tag="combo",
        handler=handler,
        record_scenarios=[{"kind": "card"}],
        branch_overrides={"check": {"ok": True}},
    )
    steps = steps_of(compile_definition(wf))
    assert steps["charge"]["condition"] == "$Input{kind} == 'card' && $Step{check}{ok} == true"


def test_override_with_several_fields_ands_them() -> None:
    def handler(ctx: Any) -> None:
        v = ctx.step("validate", lambda: 1)
        if v["valid"] and v.details.region == "eu":
            ctx.step("ship", lambda: 1)

    wf = define(
        tag="multi",
        handler=handler,
        branch_overrides={"validate": {"valid": True, "details": {"region": "eu"}}},
    )
    steps = steps_of(compile_definition(wf))
    assert (
        steps["ship"]["condition"]
        == "$Step{validate}{valid} == true && $Step{validate}{details.region} == 'eu'"
    )


# -- what else recording notes -----------------------------------------------------------------------------


async def _refund(output: Any) -> None:
    raise AssertionError("rollbacks never run while recording")


@workflow("everything", signals={"approve": {"by": "string"}}, timeout="5m")
async def everything(ctx: Any) -> Any:
    ctx.log.info("start", {"who": ctx.input.user})
    charge = await ctx.step(
        "charge",
        lambda: 1,
        rollback=_refund,
        retries=3,
        retry_delay="2s",
        backoff=2,
        max_delay="10s",
        timeout="30s",
        critical=True,
    )
    await ctx.step("notify", lambda: 1, options={"allowFail": True})
    await ctx.sleep("5m", name="cool-off")
    await ctx.checkpoint("charged", {"charge_id": charge["id"]})
    approval = await ctx.wait_for_signal("approve", timeout="24h")
    await ctx.action.run(
        app="crm",
        event="note",
        input={"body": {"by": approval.by, "key": f"{ctx.workflow_id}-note"}},
    )
    a, b = await ctx.parallel([ctx.step("left", lambda: 1), ctx.step("right", lambda: 2)])
    child = await ctx.workflow(f"{ctx.workflow_id}-child", "child-flow", {"charge": charge.id})
    if ctx.patched("new-path"):
        await ctx.step("new-path", lambda: 1)
    return {"a": a, "child": child}


def test_recording_notes_every_kind_of_operation_with_options_and_lines() -> None:
    schema = compile_definition(everything)
    kinds = [op["kind"] for op in schema["operations"]]
    assert kinds == [
        "step",
        "step",
        "sleep",
        "checkpoint",
        "signal",
        "component",
        "step",
        "step",
        "child",
        "patch",
        "step",
    ]
    steps = steps_of(schema)
    assert steps["charge"]["options"] == {
        "retries": 3,
        "retry_delay_ms": 2000,
        "backoff": 2.0,
        "max_delay_ms": 10000,
        "timeout_ms": 30000,
    }
    assert steps["charge"]["has_rollback"] and steps["charge"]["critical"]
    assert steps["notify"]["allow_fail"] and not steps["notify"]["has_rollback"]
    assert steps["left"]["parallel"] == steps["right"]["parallel"] == "p1"
    ops = schema["operations"]
    assert ops[2] == {
        "kind": "sleep",
        "name": "cool-off",
        "duration_ms": 300000,
        "condition": None,
        "source": ops[2]["source"],
    }
    assert ops[3]["data"] == {"charge_id": "$Step{charge}{id}"}
    assert ops[4]["signals"] == ["approve"] and ops[4]["timeout_ms"] == 86_400_000
    assert ops[5]["args"]["input"]["body"] == {
        "by": "$Signal{approve}{by}",
        "key": "$Workflow{id}-note",
    }
    assert ops[8]["workflow"] == "child-flow" and ops[8]["input"] == {"charge": "$Step{charge}{id}"}
    source, line = steps["charge"]["source"].rsplit(":", 1)
    assert source == __file__ and int(line) == everything.handler.__code__.co_firstlineno + 3
    json.dumps(schema)  # all JSON


def test_sync_handlers_record_too() -> None:
    def handler(ctx: Any) -> None:
        first = ctx.step("first", lambda: 1)
        ctx.step("second", lambda: 1, input={"from": first})
        ctx.sleep(1000)

    schema = compile_definition(define(tag="sync", handler=handler))
    assert [op["kind"] for op in schema["operations"]] == ["step", "step", "sleep"]
    assert steps_of(schema)["second"]["options"]["input"] == {"from": "$Step{first}"}


def test_iterating_a_placeholder_records_nothing_and_warns() -> None:
    async def handler(ctx: Any) -> None:
        for item in ctx.input.items:
            await ctx.step(f"p-{item.id}", lambda: 1)

    schema = compile_definition(define(tag="loop", handler=handler))
    assert schema["steps"] == []
    assert any("$Input{items}" in w and "record_input" in w for w in schema["warnings"])


def test_input_fields_named_like_dict_methods_and_json() -> None:
    def handler(ctx: Any) -> None:
        ctx.step(
            "copy",
            lambda: 1,
            input={"raw": json.dumps(ctx.input), "items": [i.id for i in ctx.input.items]},
        )
        for key, _value in ctx.input.to_dict().items():
            ctx.step(f"key-{key}", lambda: 1)
        ctx.step(
            "later",
            lambda: 1,
            input={"maybe": ctx.input.get, "keys": sorted(ctx.input.to_dict().keys())},
        )

    wf = define(tag="m", handler=handler, record_input={"items": [{"id": "a"}]})
    steps = steps_of(compile_definition(wf))
    assert steps["copy"]["options"]["input"] == {"raw": '{"items": [{"id": "a"}]}', "items": ["a"]}
    assert "key-items" in steps
    assert steps["later"]["options"]["input"] == {"maybe": "$Input{get}", "keys": ["items"]}


def test_signal_overrides_choose_which_signal_arrives() -> None:
    async def handler(ctx: Any) -> None:
        decision = await ctx.wait_for_signal(["approved", "rejected"])
        if decision["_signal"] == "approved":
            await ctx.step("pay", lambda: 1, input={"by": decision["approver_id"]})

    schema = compile_definition(
        define(tag="sig", handler=handler, branch_overrides={"approved": {"approver_id": "m-1"}})
    )
    pay = steps_of(schema)["pay"]
    assert pay["options"]["input"] == {"by": "m-1"} and pay["condition"] is None
    message = compile_error(define(tag="sig", handler=handler))
    assert (
        "say which signal arrives while recording with branch_overrides={'approved': {...payload}}"
        in message
    )


def test_list_override_lets_a_loop_over_a_step_result_record() -> None:
    async def handler(ctx: Any) -> None:
        batch = await ctx.step("get-batch", lambda: [])
        await ctx.parallel(
            [ctx.step(f"process-{item['id']}", lambda: 1) for item in batch], concurrency=4
        )

    schema = compile_definition(
        define(tag="b", handler=handler, branch_overrides={"get-batch": [{"id": "1"}, {"id": "2"}]})
    )
    steps = steps_of(schema)
    assert list(steps) == ["get-batch", "process-1", "process-2"]
    assert steps["process-1"]["dynamic"] and steps["process-1"]["parallel"] == "p1"
    assert steps["process-1"]["condition"] is None  # a list override implies no condition


def test_unused_branch_override_is_a_warning() -> None:
    wf = define(
        tag="w", handler=lambda ctx: ctx.step("a", lambda: 1), branch_overrides={"nope": {"x": 1}}
    )
    assert any("'nope'" in w for w in compile_definition(wf)["warnings"])


# -- explicit conditions -------------------------------------------------------------------------------------

SEED_CONDITIONS = [
    "$Step{validate}{valid} == true",
    "$Input{status} != 'draft'",
    "$Step{score}{value} >= 5",
    "$Input{count} <= 100",
    "$Step{validate}{available} == true",
    "$Input{type} == 'premium'",
    "$Step{score}{value} >= 80 && $Input{role} != 'guest'",
    "($Input{region} == 'eu') || ($Input{region} == 'uk')",
    "$Step{validate}{valid} === true",
    '$Input{status} !== "draft"',
    "$Step{score}{value} > 5",
    "$Input{count} < 100",
    "$Step{stepTag}{nested.field} == 'x'",
    "$Input{nested.field} != false",
]


@pytest.mark.parametrize("text", SEED_CONDITIONS)
def test_every_seed_condition_is_accepted_as_an_explicit_condition(text: str) -> None:
    wf = define(tag="c", handler=lambda ctx: ctx.step("s", lambda: 1, condition=text))
    step = compile_definition(wf)["steps"][0]
    assert step["explicit_condition"] is True
    assert step["condition"] == conditions.to_text(conditions.parse(text))


def test_explicit_and_implied_conditions_are_both_kept() -> None:
    def handler(ctx: Any) -> None:
        if ctx.input.tier == "gold":
            ctx.step("bonus", lambda: 1, condition="$Input{amount} > 100")

    step = compile_definition(
        define(tag="c", handler=handler, record_scenarios=[{"tier": "gold"}])
    )["steps"][0]
    assert step["condition"] == "$Input{amount} > 100 && $Input{tier} == 'gold'"
    assert step["implied_condition"] == "$Input{tier} == 'gold'"
    assert step["explicit_condition"] is True


def test_malformed_condition_is_an_error_with_a_caret() -> None:
    wf = define(
        tag="bad",
        handler=lambda ctx: ctx.step("charge", lambda: 1, condition="$Step{score}{value} >= && x"),
    )
    message = compile_error(wf)
    first, text, caret = message.splitlines()
    assert (
        first.startswith("workflow 'bad' at ")
        and "step 'charge': invalid condition" in first
        and "column 24" in first
    )
    assert text.strip() == "$Step{score}{value} >= && x"
    assert caret.index("^") == text.index("&&")


# -- errors while recording ------------------------------------------------------------------------------


async def _branches_without_override(ctx: Any) -> None:
    v = await ctx.step("validate", lambda: 1)
    if not v["valid"]:
        return


async def _switch_without_scenarios(ctx: Any) -> None:
    if ctx.input.type == "a":
        await ctx.step("a", lambda: 1)


async def _bad_sleep(ctx: Any) -> None:
    await ctx.sleep("5x")


def _duplicate(ctx: Any) -> None:
    ctx.step("a", lambda: 1)
    ctx.step("a", lambda: 1)


async def _raises(ctx: Any) -> None:
    raise ValueError("no luck")


async def _unknown_signal(ctx: Any) -> None:
    await ctx.wait_for_signal("aprove")


async def _bad_option(ctx: Any) -> None:
    await ctx.step("a", lambda: 1, retries=-1)


async def _sums_a_placeholder(ctx: Any) -> None:
    await ctx.step("a", lambda: 1, input=ctx.input.amount * 2)


@pytest.mark.parametrize(
    ("handler", "options", "expected"),
    [
        (
            _branches_without_override,
            {},
            [
                "TypeError",
                "$Step{validate}{valid}",
                "truth test",
                "branch_overrides={'validate': {'valid': ...}}",
            ],
        ),
        (
            _switch_without_scenarios,
            {},
            ["TypeError", "$Input{type}", "comparison", "record_scenarios", "record_input"],
        ),
        (_sums_a_placeholder, {}, ["$Input{amount}", "arithmetic", "record_input={'amount': ...}"]),
        (_bad_sleep, {}, ["invalid sleep duration '5x'"]),
        (_duplicate, {}, ["duplicate step tag 'a'"]),
        (_raises, {}, ["raised ValueError while recording", "no luck"]),
        (
            _unknown_signal,
            {"signals": {"approve": {}}},
            ["wait_for_signal('aprove')", "declared: approve"],
        ),
        (_bad_option, {}, ["retries must be a non-negative integer"]),
    ],
)
def test_handler_mistakes_are_one_line_errors_naming_workflow_and_line(
    handler: Any, options: dict[str, Any], expected: list[str]
) -> None:
    message = compile_error(define(tag="oops", handler=handler, **options))
    assert "\n" not in message
    assert message.startswith("workflow 'oops'")
    assert "test_compiler.py:" in message
    for fragment in expected:
        assert fragment in message


def test_without_strict_a_raising_handler_gives_an_incomplete_schema() -> None:
    async def handler(ctx: Any) -> None:
        first = await ctx.step("first", lambda: 1)
        if first["ok"]:
            await ctx.step("second", lambda: 1)

    schema = compile_definition(define(tag="partial", handler=handler), strict=False)
    assert [s["tag"] for s in schema["steps"]] == ["first"]
    (reason,) = schema["incomplete"]
    assert "$Step{first}{ok}" in reason and "branch_overrides" in reason
    with pytest.raises(DefinitionError):
        compile_definition(
            define(tag="bad", handler=_bad_sleep), strict=False
        )  # ctx misuse raises either way


def test_scenario_errors_name_the_scenario() -> None:
    async def handler(ctx: Any) -> None:
        if ctx.input.type == "a" and ctx.input.size > 3:
            await ctx.step("a", lambda: 1)

    message = compile_error(define(tag="s", handler=handler, record_scenarios=[{"type": "a"}]))
    assert "record_scenarios[0]" in message and "$Input{size}" in message


def test_a_handler_looping_forever_on_ctx_calls_is_stopped() -> None:
    def handler(ctx: Any) -> None:
        i = 0
        while True:
            ctx.step(f"s{i}", lambda: 1)
            i += 1

    assert "more than 10000 operations" in compile_error(define(tag="forever", handler=handler))


def test_a_handler_blocking_outside_ctx_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recording, "RECORD_TIMEOUT", 0.2)

    def handler(ctx: Any) -> None:
        while True:
            pass

    assert "did not finish within 0.2s" in compile_error(define(tag="busy", handler=handler))


def test_recording_works_inside_a_running_event_loop() -> None:
    import asyncio

    async def main() -> dict[str, Any]:
        return compile_definition(order_fulfillment)

    assert len(asyncio.run(main())["steps"]) == 2


# -- versions -----------------------------------------------------------------------------------------------


def test_version_is_a_content_hash_stable_across_compiles_and_source_positions() -> None:
    first, second = compile_definition(order_fulfillment), compile_definition(order_fulfillment)
    assert first["version"] == second["version"] == version_of(first)
    moved = json.loads(json.dumps(first))
    for step in moved["steps"]:
        step["source"] = "elsewhere.py:1"
    moved["source_line"] = 999
    assert version_of(moved) == first["version"]
    changed = json.loads(json.dumps(first))
    changed["steps"][1]["condition"] = "$Step{validate}{valid} == false"
    assert version_of(changed) != first["version"]
    assert first["source_hash"] == source_hash_of(order_fulfillment)


def test_options_change_the_version() -> None:
    def a(ctx: Any) -> None:
        ctx.step("x", lambda: 1)

    assert (
        compile_definition(define(tag="v", handler=a))["version"]
        != compile_definition(define(tag="v", handler=a, timeout="1m"))["version"]
    )


def test_a_child_tag_chosen_at_run_time_is_recorded_as_its_source() -> None:
    @workflow("dispatcher")
    async def dispatcher(ctx: Any) -> Any:
        return await ctx.workflow("child-" + ctx.workflow_id, ctx.input.kind, {})

    schema = compile_definition(dispatcher)
    children = [op for op in schema["operations"] if op["kind"] == "child"]
    assert [(c["workflow"], c["child_id"]) for c in children] == [
        ("$Input{kind}", "child-$Workflow{id}")
    ]
