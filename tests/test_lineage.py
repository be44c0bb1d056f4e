"""Replay, restart, resume from a point, related executions and compare (issue 7).

Side effects are counted in calls.log in the project folder: each step function
appends its tag when it really runs, so a test can tell re-run steps from
replayed ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

SHIPPING = """
from pathlib import Path

from ductape_cli import workflow


def effect(tag, value, fail_flag=None):
    with open("calls.log", "a", encoding="utf-8") as log:
        log.write(tag + "\\n")
    if fail_flag and Path(fail_flag).exists():
        raise RuntimeError(f"{tag}: {fail_flag}")
    return value


@workflow("shipping", rollback_strategy="none")
async def shipping(ctx):
    order = await ctx.step("validate-order", lambda: effect("validate-order", {"valid": True, "total": ctx.input.total}))
    await ctx.checkpoint("validation-complete", {"total": order["total"]})
    payment = await ctx.step("process-payment", lambda: effect("process-payment", {"charge_id": "ch_" + ctx.input.orderId, "amount": order["total"]}))
    shipment = await ctx.step("create-shipment", lambda: effect("create-shipment", {"shipment": "sh_1"}, "carrier-down"))
    confirmation = await ctx.step("send-confirmation", lambda: effect("send-confirmation", {"sent": True}, "smtp-down"))
    return {
        "total": order["total"], "charge": payment["charge_id"], "amount": payment["amount"],
        "shipment": shipment["shipment"], "confirmation": confirmation,
        "is_replay": ctx.is_replay, "replayed_from": ctx.replayed_from, "replay_reason": ctx.replay_reason,
        "is_restored": ctx.is_restored, "restored_checkpoint": ctx.restored_checkpoint,
    }
"""

ORDER = {"orderId": "ORD-123", "total": 100}


@pytest.fixture
def shop(project: Any) -> Any:
    project.write("shipping", SHIPPING)
    project.write(
        "order_fulfillment",
        (REPO / "tests" / "fixtures" / "order_fulfillment_plain.py").read_text(encoding="utf-8"),
    )
    return project


def calls(project: Any) -> dict[str, int]:
    path = project.root / "calls.log"
    counts: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8").split() if path.exists() else []:
        counts[line] = counts.get(line, 0) + 1
    return counts


def flag(project: Any, name: str, on: bool) -> None:
    path: Path = project.root / name
    if on:
        path.touch()
    else:
        path.unlink(missing_ok=True)


def start(cli: Any, tag: str, payload: str, expect: int) -> str:
    result = cli("run", tag, "--input", payload, "--json")
    assert result.exit_code == expect, result.stdout + result.stderr
    return str(result.json()["workflow_id"])


def snapshot(project: Any) -> list[tuple[Any, ...]]:
    eng = project.engine()
    try:
        store = eng.store
        return [
            (
                r.id,
                str(r.status),
                store.count_events(r.id),
                len(store.load_journal(r.id)),
                r.lineage,
            )
            for r in store.list_runs(limit=1000)
        ]
    finally:
        eng.close()


def failed_shipping(shop: Any, cli: Any, flag_name: str) -> str:
    flag(shop, flag_name, True)
    run_id = start(cli, "shipping", '{"orderId": "ORD-123", "total": 100}', 1)
    flag(shop, flag_name, False)
    return run_id


# -- the seed's debugging story, end to end ---------------------------------------


def test_wrong_email_story_through_the_cli(shop: Any, cli: Any) -> None:
    bad = '{"orderId": "ORD-123", "items": ["sku-1"], "amount": 100, "email": "wrong.example.com"}'
    original = cli("run", "order-fulfillment", "--input", bad, "--json")
    assert original.exit_code == 1
    run_id = original.json()["workflow_id"]
    assert original.json()["failed_step"] == "process-payment"

    events = cli("history", run_id, "--json").json()["events"]
    failed = [e for e in events if e["type"] == "step_failed"]
    assert failed and "invalid email 'wrong.example.com'" in failed[0]["data"]["error"]["message"]

    restarted = cli("restart", run_id, "--set", "email=corrected@example.com", "--json")
    assert restarted.exit_code == 0, restarted.stderr
    fixed = restarted.json()
    assert fixed["status"] == "completed" and fixed["restarted_from"] == run_id
    assert fixed["output"]["success"] is True
    assert (
        cli("status", fixed["workflow_id"], "--json").json()["input"]["email"]
        == "corrected@example.com"
    )

    for member in (run_id, fixed["workflow_id"]):
        family = cli("related", member, "--json").json()["executions"]
        assert [(e["workflow_id"], e["type"], e["status"]) for e in family] == [
            (run_id, "original", "failed"),
            (fixed["workflow_id"], "restart", "completed"),
        ]
        assert family[1]["restarted_from"] == run_id and "restarted_from" not in family[0]

    comparison = cli("compare", run_id, fixed["workflow_id"], "--json").json()
    assert comparison["input_diff"] == {"email": ["wrong.example.com", "corrected@example.com"]}
    payment = next(d for d in comparison["step_diffs"] if d["step"] == "process-payment")
    assert payment[run_id]["status"] == "failed" and "invalid email" in payment[run_id]["error"]
    assert payment[fixed["workflow_id"]] == {
        "status": "completed",
        "output": payment[fixed["workflow_id"]]["output"],
        "error": None,
    }
    assert payment[fixed["workflow_id"]]["output"]["id"] == "ch_ORD-123"
    assert "validate" not in {d["step"] for d in comparison["step_diffs"]}
    assert comparison["output_diff"]["success"] == [None, True]
    durations = {s["step"]: s for s in comparison["steps"]}
    assert durations["validate"][run_id]["duration"] is not None

    tree = cli("related", run_id)
    assert tree.exit_code == 0 and run_id in tree.stdout and "restart" in tree.stdout
    table = cli("compare", run_id, fixed["workflow_id"])
    assert (
        table.exit_code == 0
        and "input.email" in table.stdout
        and "corrected@example.com" in table.stdout
    )


# -- replay -------------------------------------------------------------------------


def test_replay_runs_again_with_original_input_and_reason(shop: Any, cli: Any) -> None:
    run_id = start(cli, "shipping", '{"orderId": "ORD-123", "total": 100}', 0)
    result = cli("replay", run_id, "--reason", "Debugging payment failure", "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["workflow_id"] != run_id and data["replayed_from"] == run_id
    assert data["output"]["is_replay"] is True and data["output"]["replayed_from"] == run_id
    assert data["output"]["replay_reason"] == "Debugging payment failure"
    assert data["output"]["total"] == 100
    assert calls(shop) == {
        "validate-order": 2,
        "process-payment": 2,
        "create-shipment": 2,
        "send-confirmation": 2,
    }


def test_replay_idempotency_key_returns_the_same_run(shop: Any, cli: Any) -> None:
    run_id = start(cli, "shipping", '{"orderId": "ORD-123", "total": 100}', 0)
    first = cli("replay", run_id, "--idempotency-key", "replay-attempt-2", "--json").json()
    again = cli("replay", run_id, "--idempotency-key", "replay-attempt-2", "--json").json()
    assert first["workflow_id"] == again["workflow_id"] and again["replayed_from"] == run_id
    assert len(snapshot(shop)) == 2


def test_replay_from_step_reuses_earlier_outputs(shop: Any, cli: Any) -> None:
    run_id = start(cli, "shipping", '{"orderId": "ORD-123", "total": 100}', 0)
    result = cli("replay", run_id, "--from-step", "create-shipment", "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["replayed_from"] == run_id and data["output"]["charge"] == "ch_ORD-123"
    assert calls(shop) == {
        "validate-order": 1,
        "process-payment": 1,
        "create-shipment": 2,
        "send-confirmation": 2,
    }
    step = cli("step", data["workflow_id"], "process-payment", "--json").json()
    assert step["status"] == "completed" and step["output"]["charge_id"] == "ch_ORD-123"


def test_replay_from_step_with_step_output_override(shop: Any, cli: Any) -> None:
    """The seed's 'Step Replay with State Override': a corrected validate-order total."""
    run_id = start(cli, "shipping", '{"orderId": "ORD-123", "total": 100}', 0)
    result = cli(
        "replay",
        run_id,
        "--from-step",
        "process-payment",
        "--step-output",
        'validate-order={"valid": true, "total": 150.0}',
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["output"]["total"] == 150.0 and data["output"]["amount"] == 150.0
    assert calls(shop) == {
        "validate-order": 1,
        "process-payment": 2,
        "create-shipment": 2,
        "send-confirmation": 2,
    }
    detail = cli("step", data["workflow_id"], "validate-order", "--json").json()
    assert (
        detail["output"] == {"valid": True, "total": 150.0}
        and detail["options"]["overridden"] is True
    )
    comparison = cli("compare", run_id, data["workflow_id"], "--json").json()
    assert comparison["output_diff"]["total"] == [100, 150.0]
    assert {d["step"] for d in comparison["step_diffs"]} == {"validate-order", "process-payment"}


def test_replay_from_step_of_a_failed_run(shop: Any, cli: Any) -> None:
    run_id = failed_shipping(shop, cli, "carrier-down")
    data = cli("replay", run_id, "--from-step", "create-shipment", "--json").json()
    assert data["status"] == "completed" and data["output"]["shipment"] == "sh_1"
    assert calls(shop)["process-payment"] == 1 and calls(shop)["create-shipment"] == 2
    assert cli("status", run_id, "--json").json()["status"] == "failed"  # the original is untouched


# -- restart ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--input", '{"orderId": "ORD-9", "total": 5}'], {"orderId": "ORD-9", "total": 5}),
        (["--input-override", '{"total": 7}', "--merge"], {"orderId": "ORD-123", "total": 7}),
        (["--set", "total=42", "--set", "orderId=ORD-1"], {"orderId": "ORD-1", "total": 42}),
        (
            ["--set", "note=hello world", "--set", "meta.source=cli"],
            {**ORDER, "note": "hello world", "meta": {"source": "cli"}},
        ),
    ],
)
def test_restart_input_forms(
    shop: Any, cli: Any, args: list[str], expected: dict[str, Any]
) -> None:
    run_id = start(cli, "shipping", '{"orderId": "ORD-123", "total": 100}', 0)
    result = cli("restart", run_id, *args, "--reason", "corrected", "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["restarted_from"] == run_id and data["output"]["is_replay"] is False
    assert cli("status", data["workflow_id"], "--json").json()["input"] == expected
    family = cli("related", data["workflow_id"], "--json").json()["executions"]
    assert family[1]["reason"] == "corrected"


def test_restart_input_merging_and_dotted_keys() -> None:
    from ductape_cli.engine.lineage import restart_input

    original = {"customer": {"email": "x", "name": "Jo"}, "items": [{"qty": 1}, {"qty": 2}]}
    assert restart_input(original, input_override={"customer": {"email": "y"}}, merge=True) == {
        "customer": {"email": "y", "name": "Jo"},
        "items": [{"qty": 1}, {"qty": 2}],
    }
    changed = restart_input(original, set_values=[("customer.email", "z"), ("items.1.qty", 5)])
    assert changed["customer"] == {"email": "z", "name": "Jo"} and changed["items"][1] == {"qty": 5}
    assert original["customer"]["email"] == "x"  # the original is not modified
    assert restart_input(original, input={"a": 1}) == {"a": 1}


# -- resume -------------------------------------------------------------------------


def test_resume_from_step_reruns_that_step_and_later(shop: Any, cli: Any) -> None:
    run_id = failed_shipping(shop, cli, "carrier-down")
    result = cli("resume", run_id, "--from-step", "process-payment", "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["workflow_id"] == run_id and data["status"] == "completed"
    assert calls(shop) == {
        "validate-order": 1,
        "process-payment": 2,
        "create-shipment": 2,
        "send-confirmation": 1,
    }
    assert data["output"]["is_restored"] is False
    events = cli("history", run_id, "--json").json()["events"]
    resumed = [e for e in events if e["type"] == "workflow_resumed"]
    assert (
        resumed[-1]["data"]["from_step"] == "process-payment"
        and resumed[-1]["data"]["resumed_by"] == "resume"
    )
    family = cli("related", run_id, "--json").json()["executions"]
    assert family[0]["resumes"][0]["from_step"] == "process-payment"


def test_resume_from_step_with_skip_as_in_the_seed(shop: Any, cli: Any) -> None:
    """from_step 'create-shipment', skip_steps ['send-confirmation']."""
    run_id = failed_shipping(shop, cli, "smtp-down")
    result = cli(
        "resume", run_id, "--from-step", "create-shipment", "--skip", "send-confirmation", "--json"
    )
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["status"] == "completed" and data["output"]["confirmation"] is None
    assert calls(shop) == {
        "validate-order": 1,
        "process-payment": 1,
        "create-shipment": 2,
        "send-confirmation": 1,
    }
    steps = {s["tag"]: s for s in cli("status", run_id, "--json").json()["steps"]}
    assert steps["send-confirmation"]["status"] == "skipped"
    assert steps["send-confirmation"]["options"]["skip"]["reason"] == "skipped by resume --skip"


def test_resume_skip_alone_continues_past_the_failed_step(shop: Any, cli: Any) -> None:
    flag(shop, "smtp-down", True)
    run_id = start(cli, "shipping", '{"orderId": "ORD-123", "total": 100}', 1)
    result = cli("resume", run_id, "--skip", "send-confirmation", "--json")
    assert result.exit_code == 0, result.stderr
    assert calls(shop) == {
        "validate-order": 1,
        "process-payment": 1,
        "create-shipment": 1,
        "send-confirmation": 1,
    }


def test_resume_from_checkpoint_restores_it(shop: Any, cli: Any) -> None:
    run_id = failed_shipping(shop, cli, "carrier-down")
    result = cli("resume", run_id, "--from-checkpoint", "validation-complete", "--json")
    assert result.exit_code == 0, result.stderr
    output = result.json()["output"]
    assert output["is_restored"] is True
    assert output["restored_checkpoint"] == {"name": "validation-complete", "data": {"total": 100}}
    assert calls(shop) == {
        "validate-order": 1,
        "process-payment": 2,
        "create-shipment": 2,
        "send-confirmation": 1,
    }


def test_plain_resume_of_a_failed_run_reruns_only_the_failed_step(shop: Any, cli: Any) -> None:
    from ductape_cli.engine.lineage import resume_from

    run_id = failed_shipping(shop, cli, "carrier-down")
    eng = shop.engine()
    try:
        result = resume_from(eng, run_id)
    finally:
        eng.close()
    assert result["status"] == "completed" and result["resumed"]["rerun"] == ["create-shipment"]
    assert calls(shop) == {
        "validate-order": 1,
        "process-payment": 1,
        "create-shipment": 2,
        "send-confirmation": 1,
    }


def test_a_worker_cannot_take_a_resumed_run_from_the_resume_that_drives_it(
    shop: Any, cli: Any
) -> None:
    """Between rewinding a run and driving it, a worker polling the store must not claim it.

    (`serve`'s own worker did: the API's resume then answered "running" instead of the result.)
    """
    from ductape_cli.engine.lineage import resume_from

    run_id = failed_shipping(shop, cli, "carrier-down")
    eng, rival = shop.engine(), shop.engine()
    drive = eng.drive
    taken: list[Any] = []

    def rival_polls_first(*args: Any, **kwargs: Any) -> Any:
        taken.extend(rival.store.claim_ready(rival.owner, rival.clock.now(), 30, 10))
        return drive(*args, **kwargs)

    eng.drive = rival_polls_first  # type: ignore[method-assign]
    try:
        result = resume_from(eng, run_id)
    finally:
        eng.close()
        rival.close()
    assert taken == []
    assert result["status"] == "completed"
    assert calls(shop)["create-shipment"] == 2


def test_resume_of_a_run_cancelled_before_it_started(shop: Any) -> None:
    from ductape_cli.engine.lineage import resume_from

    eng = shop.engine()
    try:
        run, _ = eng.start("shipping", ORDER, detach=True)
        assert eng.cancel(run.id, "not yet")["status"] == "cancelled"
        result = resume_from(eng, run.id)
    finally:
        eng.close()
    assert result["status"] == "completed" and result["workflow_id"] == run.id
    assert calls(shop)["validate-order"] == 1


def test_python_api_replay_restart_related_compare(shop: Any) -> None:
    from ductape_cli.engine import lineage

    eng = shop.engine()
    try:
        original = eng.run("shipping", ORDER)
        replayed = lineage.replay(eng, original["workflow_id"], reason="again")
        replay_of_replay = lineage.replay(eng, replayed["workflow_id"])
        restarted = lineage.restart(eng, original["workflow_id"], set_values={"total": 5})
        family = lineage.related(eng, replay_of_replay["workflow_id"])
        comparison = lineage.compare(eng, original["workflow_id"], restarted["workflow_id"])
    finally:
        eng.close()
    assert [(e["type"], e["depth"]) for e in family["executions"]] == [
        ("original", 0),
        ("replay", 1),
        ("replay", 2),
        ("restart", 1),
    ]
    assert family["root"] == original["workflow_id"]
    assert comparison["input_diff"] == {"total": [100, 5]}
    assert comparison["output_diff"]["total"] == [100, 5]


# -- refusals and bad input: exit 2, one line, nothing written --------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [("completed", "already completed"), ("rolled_back", "rolled")],
)
def test_resume_refuses_runs_where_it_makes_no_sense(
    shop: Any, cli: Any, status: str, expected: str
) -> None:
    if status == "completed":
        run_id = start(cli, "shipping", '{"orderId": "ORD-123", "total": 100}', 0)
    else:
        payload = '{"orderId": "ORD-1", "items": ["a"], "email": "a@b.c", "stock": "gone"}'
        run_id = start(cli, "order-fulfillment", payload, 3)
    before = snapshot(shop)
    for args in ([], ["--from-step", "validate" if status != "completed" else "validate-order"]):
        result = cli("resume", run_id, *args)
        assert result.exit_code == 2
        assert len(result.stderr.strip().splitlines()) == 1 and expected in result.stderr
    assert snapshot(shop) == before


BAD = [
    (["replay", "wf_nope"], "no run with id"),
    (["restart", "wf_nope", "--set", "email=x"], "no run with id"),
    (["related", "wf_nope"], "no run with id"),
    (["compare", "{id}", "wf_nope"], "no run with id"),
    (["resume", "wf_nope", "--from-step", "x"], "no run with id"),
    (["replay", "{id}", "--from-step", "nope"], "no step 'nope'"),
    (
        ["replay", "{id}", "--from-step", "create-shipment", "--step-output", "nope={}"],
        "not a step before",
    ),
    (
        [
            "replay",
            "{id}",
            "--from-step",
            "create-shipment",
            "--step-output",
            "process-payment={bad",
        ],
        "not valid JSON",
    ),
    (
        ["replay", "{id}", "--from-step", "create-shipment", "--step-output", "no-equals"],
        "expects TAG=JSON",
    ),
    (["replay", "{id}", "--step-output", "validate-order={}"], "needs --from-step"),
    (["resume", "{id}", "--from-step", "nope"], "not recorded step 'nope'"),
    (["resume", "{id}", "--from-checkpoint", "nope"], "no checkpoint 'nope'"),
    (["resume", "{id}", "--skip", "nope"], "has no step 'nope'"),
    (
        ["resume", "{id}", "--from-step", "create-shipment", "--skip", "validate-order"],
        "only steps that run again",
    ),
    (
        [
            "resume",
            "{id}",
            "--from-step",
            "create-shipment",
            "--from-checkpoint",
            "validation-complete",
        ],
        "not both",
    ),
    (["restart", "{id}", "--set", "email"], "expects KEY=VALUE"),
    (["restart", "{id}", "--set", "=x"], "expects KEY=VALUE"),
    (["restart", "{id}", "--set", "a..b=1"], "a name between every dot"),
    (["restart", "{id}", "--set", "total.cents=1"], "total is a number, not an object"),
    (["restart", "{id}", "--input", "{broken"], "not valid JSON"),
    (["restart", "{id}", "--input", "{}", "--input-override", "{}"], "not both"),
    (["restart", "{id}", "--input-override", "[1]", "--merge"], "JSON objects"),
    (["restart", "{id}"], "restart needs new input"),
    (["compare", "{id}", "{id}"], "two different runs"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    shop: Any, cli: Any, args: list[str], message: str
) -> None:
    run_id = failed_shipping(shop, cli, "carrier-down")
    before = snapshot(shop)
    result = cli(*[a.replace("{id}", run_id) for a in args])
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert snapshot(shop) == before


def test_diff_values_paths() -> None:
    from ductape_cli.engine.lineage import diff_values

    assert diff_values(
        {"a": {"b": 1, "c": [1, 2]}, "d": True}, {"a": {"b": 2, "c": [1, 3]}, "d": 1}
    ) == {
        "a.b": [1, 2],
        "a.c.1": [2, 3],
        "d": [True, 1],
    }
    assert diff_values({"x": 1}, {"x": 1, "y": None}) == {}
    assert diff_values({"x": 1}, {"y": 2}) == {"x": [1, None], "y": [None, 2]}
    assert diff_values(1, 2) == {"$": [1, 2]}
    assert diff_values(None, {}) == {"$": [None, {}]}
    assert diff_values({"a": {"b": 1}}, {"a": "flat"}) == {"a": [{"b": 1}, "flat"]}


def test_resume_from_step_before_a_signal_wait_redelivers_the_signal(shop: Any, cli: Any) -> None:
    shop.write(
        "approval_flow",
        SHIPPING.split("@workflow")[0]
        + """
@workflow("approval-flow", rollback_strategy="none", signals={"approve": {"by": "string"}})
async def approval_flow(ctx):
    await ctx.step("prepare", lambda: effect("prepare", {"ok": True}))
    decision = await ctx.wait_for_signal("approve")
    await ctx.step("apply", lambda: effect("apply", {"by": decision["by"]}, "apply-down"))
    return {"by": decision["by"]}
""",
    )
    flag(shop, "apply-down", True)
    run_id = start(cli, "approval-flow", "{}", 5)
    assert cli("signal", run_id, "approve", "--data", '{"by": "ann"}', "--json").exit_code == 1
    flag(shop, "apply-down", False)
    result = cli("resume", run_id, "--from-step", "prepare", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.json()["output"] == {"by": "ann"}
    assert calls(shop) == {"prepare": 2, "apply": 2}
