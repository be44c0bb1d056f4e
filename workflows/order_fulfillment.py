"""Order fulfillment, from the seed's "Complete Example": validate, pay, reserve, record, confirm, queue.

Inputs that exercise failures: `"card": "declined"` fails the payment after its
retries (nothing to roll back yet), `"stock": "gone"` fails the reservation
after payment (the payment is refunded), `"email"` without an @ fails the
confirmation-critical `process-payment` receipt.
"""

from ductape_cli import workflow

REFUNDS: list[dict] = []


def check_availability(items: list) -> dict:
    return {"available": bool(items), "reason": None if items else "no items"}


def charge(order: dict) -> dict:
    if order.get("card") == "declined":
        raise RuntimeError("Card declined")
    if "@" not in str(order.get("email", "@")):
        raise ValueError(f"cannot send receipt: invalid email {order.get('email')!r}")
    return {"id": f"ch_{order['orderId']}", "amount": order.get("amount", 0), "status": "succeeded"}


def refund(charge_result: dict) -> dict:
    REFUNDS.append(charge_result)
    return {"refunded": charge_result["id"]}


def reserve(items: list, stock: str | None) -> dict:
    if stock == "gone":
        raise RuntimeError("inventory service: items out of stock")
    return {"reservation": "res_" + "_".join(str(i) for i in items)}


@workflow(
    "order-fulfillment",
    name="Order Fulfillment",
    description="Complete order processing workflow",
    rollback_strategy="reverse_all",
    timeout="5m",
    signals={"cancel-order": {"reason": "string"}},
    branch_overrides={"validate": {"available": True}},
)
async def order_fulfillment(ctx):
    ctx.log.info("Starting order fulfillment", {"orderId": ctx.input.orderId})
    validation = await ctx.step("validate", lambda: check_availability(ctx.input.items or []))
    if not validation["available"]:
        return {"success": False, "reason": "items_unavailable"}

    payment = await ctx.step(
        "process-payment", lambda: charge(dict(ctx.input)), refund, retries=2, retry_delay="10ms", critical=True
    )
    await ctx.checkpoint("payment-complete", {"chargeId": payment["id"]})
    await ctx.step(
        "reserve-inventory",
        lambda: reserve(ctx.input.items, ctx.input.stock),
        lambda reservation: {"released": reservation["reservation"]},
    )
    order = await ctx.step(
        "create-order",
        lambda: {"id": f"ord_{ctx.input.orderId}", "payment_id": payment["id"], "status": "processing"},
    )
    await ctx.step("send-confirmation", lambda: {"to": ctx.input.email}, None, {"allow_fail": True})
    await ctx.step("queue-fulfillment", lambda: {"queued": order["id"]})
    ctx.log.info("Order fulfilled successfully", {"orderId": order["id"]})
    return {"success": True, "orderId": order["id"], "chargeId": payment["id"]}
