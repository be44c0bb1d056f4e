"""Child workflows, parent-close policies and parallel steps."""

from __future__ import annotations

import pytest

FAMILY = """
    from ductape_cli import workflow, ChildWorkflowFailed

    @workflow("payment-processing", signals={"confirm": {}})
    async def payment(ctx):
        if ctx.input.wait is True:
            await ctx.wait_for_signal("confirm")
        charge = await ctx.step("charge", lambda: {"chargeId": f"ch_{ctx.input.amount}", "parent": ctx.parent_id})
        if ctx.input.fail is True:
            await ctx.step("explode", lambda: 1 / 0)
        return charge

    @workflow("order")
    async def order(ctx):
        result = await ctx.workflow("payment-" + ctx.input.orderId, "payment-processing",
                                    {"amount": ctx.input.amount, "wait": ctx.input.wait, "fail": ctx.input.fail},
                                    {"timeout": "5m", "parent_close_policy": "terminate"})
        return {"charged": result["chargeId"], "child_saw_parent": result["parent"]}

    @workflow("order-catching")
    async def order_catching(ctx):
        try:
            await ctx.workflow("pay-" + ctx.input.orderId, "payment-processing", {"amount": 1, "fail": True}, retries=1)
        except ChildWorkflowFailed as exc:
            return {"child_failed": exc.child_id, "message": str(exc)}

    @workflow("abandoning")
    async def abandoning(ctx):
        await ctx.parallel([
            ctx.workflow("kid-" + ctx.input.policy, "payment-processing", {"amount": 1, "wait": True},
                         parent_close_policy=ctx.input.policy),
            ctx.step("boom", lambda: 1 / 0),
        ])

    @workflow("fan-out")
    async def fan_out(ctx):
        results = await ctx.parallel([ctx.step(f"item-{i}", lambda i=i: i * i) for i in range(20)], concurrency=4)
        total = await ctx.step("sum", lambda: sum(results))
        return {"results": results, "total": total}
"""


@pytest.fixture
def family(project):
    project.write("family", FAMILY)
    return project.engine()


def test_child_output_returns_to_the_parent_and_is_linked(family, cli) -> None:
    result = family.run("order", {"orderId": "o1", "amount": 5})
    assert result["status"] == "completed"
    assert result["output"] == {"charged": "ch_5", "child_saw_parent": result["workflow_id"]}
    child = family.get_run("payment-o1")
    assert child.parent_id == result["workflow_id"] and child.status == "completed"
    listed = cli("list", "--parent", result["workflow_id"], "--json").json()
    assert [r["workflow_id"] for r in listed] == ["payment-o1"]
    status = cli("status", result["workflow_id"], "--json").json()
    assert status["children"] == [
        {"workflow_id": "payment-o1", "workflow_tag": "payment-processing", "status": "completed"}
    ]


def test_failed_child_raises_in_the_parent_and_retries(family) -> None:
    failed = family.run("order", {"orderId": "o2", "amount": 5, "fail": True})
    assert failed["status"] == "failed"
    assert (
        failed["error"]["message"] == "division by zero" and failed["error"]["step"] == "payment-o2"
    )
    caught = family.run("order-catching", {"orderId": "o3"})
    assert caught["output"]["child_failed"] == "pay-o3-retry-1"
    assert family.get_run("pay-o3-retry-1").restarted_from == "pay-o3"


def test_parent_waits_durably_for_a_waiting_child(family, cli) -> None:
    started = cli(
        "run", "order", "--input", '{"orderId": "o4", "amount": 9, "wait": true}', "--json"
    )
    assert started.exit_code == 5
    parent_id = started.json()["workflow_id"]
    assert cli("status", parent_id, "--json").json()["waiting"]["child_id"] == "payment-o4"
    cli("signal", "payment-o4", "confirm", "--json")
    parent = cli("status", parent_id, "--json").json()
    assert parent["status"] == "completed" and parent["output"]["charged"] == "ch_9"


@pytest.mark.parametrize(
    ("policy", "child_status", "cancel_requested"),
    [
        ("terminate", "cancelled", True),
        ("abandon", "running", False),
        ("request_cancel", "running", True),
    ],
)
def test_parent_close_policies(family, policy, child_status, cancel_requested) -> None:
    result = family.run("abandoning", {"policy": policy})
    assert result["status"] == "failed" and result["failed_step"] == "boom"
    child = family.get_run(f"kid-{policy}")
    assert child.status == child_status
    assert (child.cancel_requested is not None) == cancel_requested
    if policy == "request_cancel":
        assert family.resume(child.id)["status"] == "cancelled"


def test_parallel_fan_out_returns_results_in_order(family) -> None:
    result = family.run("fan-out", {})
    assert result["output"]["results"] == [i * i for i in range(20)]
    assert result["output"]["total"] == sum(i * i for i in range(20))
    assert len(result["completed_steps"]) == 21
