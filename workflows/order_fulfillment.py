"""Order fulfillment, from the seed's "Complete Example": validate, pay, reserve, record, confirm, queue.

The inventory and payments apps are HTTP services declared in ductape.toml;
start the local stand-in first:  python workflows/_services/mock_apis.py

    ductape run order-fulfillment --input '{"orderId": "A1", "customerId": "c1", "amount": 42,
        "email": "ann@example.com", "items": ["sku-1"]}'

An item named "fragile" fails the reservation after payment, so the payment is
refunded (exit 3); "card": "declined" or an email without "@" fail the payment.
"""

from ductape_cli import workflow


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

    validation = await ctx.step(
        "validate",
        lambda: ctx.action.run(
            app="inventory-api",
            event="check-availability",
            input={"body": {"items": ctx.input["items"]}},
        ),
    )
    if not validation["available"]:
        return {"success": False, "reason": "items_unavailable", "missing": validation["missing"]}

    payment = await ctx.step(
        "process-payment",
        lambda: ctx.action.run(
            app="payments",
            event="create-charge",
            input={
                "body": {
                    "amount": ctx.input.amount,
                    "currency": ctx.constant("payments", "default_currency"),
                    "customer": ctx.input.customerId,
                    "card": ctx.input.card,
                    "receipt_email": ctx.input.email,
                },
                "headers": {"Idempotency-Key": f"{ctx.workflow_id}-payment"},
            },
            retries=3,
        ),
        lambda charge: ctx.action.run(
            app="payments", event="refund", input={"params": {"id": charge["id"]}}
        ),
        critical=True,
    )
    await ctx.checkpoint("payment-complete", {"chargeId": payment["id"]})

    reservation = await ctx.step(
        "reserve-inventory",
        lambda: ctx.action.run(
            app="inventory-api", event="reserve", input={"body": {"items": ctx.input["items"]}}
        ),
        lambda reserved: ctx.action.run(
            app="inventory-api", event="release", input={"params": {"id": reserved["id"]}}
        ),
    )
    order = await ctx.step(
        "create-order",
        lambda: ctx.database.insert(
            database="orders-db",
            event="create",
            data={
                "order_ref": ctx.input.orderId,
                "customer_id": ctx.input.customerId,
                "total": ctx.input.amount,
                "payment_id": payment["id"],
                "status": "processing",
            },
        ),
    )
    await ctx.step(
        "send-confirmation",
        lambda: ctx.notification.email(
            notification="transactional",
            event="order-confirmed",
            recipients=[ctx.input.email],
            subject={"orderId": ctx.input.orderId},
            template={"orderId": ctx.input.orderId, "total": ctx.input.amount},
        ),
        None,
        {"allow_fail": True},
    )
    await ctx.step(
        "queue-fulfillment",
        lambda: ctx.messaging.produce(
            event="warehouse:new-order",
            message={
                "orderId": order["id"],
                "items": ctx.input["items"],
                "reservation": reservation["id"],
            },
        ),
    )
    ctx.log.info("Order fulfilled successfully", {"orderId": order["id"]})
    return {"success": True, "orderId": order["id"], "chargeId": payment["id"]}
