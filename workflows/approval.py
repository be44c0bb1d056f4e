"""Expense approval, from the seeds' signal examples: request, wait for a decision, act on it.

ductape run expense-approval --input '{"amount": 120, "employee": "jane"}'   # exits 5, waiting
ductape signal <run id> approved --data '{"approver_id": "mgr-1", "comments": "ok"}'
"""

from ductape_cli import workflow

TOTAL_STEPS = 3


@workflow(
    "expense-approval",
    name="Expense Approval",
    signals={
        "approved": {"approver_id": "string", "comments": "string?"},
        "rejected": {"approver_id": "string", "reason": "string"},
    },
    # So `define` records the approval branch (signal results are placeholders while recording).
    branch_overrides={"approved": {"approver_id": "mgr-1", "comments": "ok"}},
    queries={
        "getProgress": lambda ctx: {
            "completed_steps": ctx.completed_steps,
            "current_step": ctx.current_step,
            "percent_complete": round(len(ctx.completed_steps) / TOTAL_STEPS * 100),
            "decision": ctx.state.get("decision"),
        }
    },
)
async def expense_approval(ctx):
    request = await ctx.step(
        "request-expense", lambda: {"status": "pending", "amount": ctx.input.amount}
    )
    ctx.set_state("decision", "waiting")
    decision = await ctx.wait_for_signal(
        ["approved", "rejected"], timeout=ctx.default(ctx.input.timeout, "24h")
    )
    ctx.set_state("decision", decision["_signal"])
    if decision["_signal"] == "approved":
        payment = await ctx.step(
            "process-payment", lambda: {"paid": request["amount"], "by": decision["approver_id"]}
        )
        return {"status": "approved", "payment": payment}
    await ctx.step(
        "notify-rejection", lambda: {"notified": ctx.input.employee, "reason": decision["reason"]}
    )
    return {"status": "rejected", "reason": decision["reason"]}
