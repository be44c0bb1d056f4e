"""ctx.notification: email to a real SMTP server, sms to a webhook, push to an outbox, and fan-out."""

from __future__ import annotations

import json
from email import message_from_string
from pathlib import Path
from typing import Any


def notifications(smtp_port: int, webhook: str) -> str:
    return f"""
    [notifications.transactional]
    smtp = {{ host = "127.0.0.1", port = {smtp_port}, from = "shop@example.com" }}
    sms = {{ webhook = "{webhook}/echo", headers = {{ X-Api-Key = "sms-key-secret" }} }}
    outbox = ".ductape/outbox"
    [notifications.transactional.events.order-confirmed]
    subject = "Order {{orderId}} confirmed"
    body = "Hi {{name}}, your total is {{total}}."
    message = "Order {{orderId}}: {{status}}"
    title = "Order {{status}}"

    [notifications.outbox-only]
    outbox = "outbox"
    [notifications.outbox-only.events.shipped]
    title = "Shipped: {{orderId}}"
    body = "Tracking {{tracking}}"
    message = "Your code is {{code}}"
    """


def test_email_over_smtp(make: Any, smtp_server: Any, http_server: Any) -> None:
    engine = make(
        notifications(smtp_server.port, http_server.url),
        """
        from ductape_cli import workflow

        @workflow("mail")
        async def mail(ctx):
            return await ctx.notification.email(
                notification="transactional", event="order-confirmed", recipients=[ctx.input["email"]],
                subject={"orderId": ctx.input["order"]}, template={"name": "Jane", "total": "12.50"},
            )
    """,
    )
    before = len(smtp_server.mailbox.messages)
    result = engine.run("mail", {"email": "jane@example.com", "order": "A-17"})
    assert result["status"] == "completed", result["error"]
    assert result["output"]["transport"] == "smtp"
    assert result["output"]["to"] == ["jane@example.com"]
    received = smtp_server.mailbox.messages[before:]
    assert len(received) == 1
    assert received[0]["from"] == "shop@example.com"
    assert received[0]["to"] == ["jane@example.com"]
    message = message_from_string(received[0]["data"])
    assert message["Subject"] == "Order A-17 confirmed"
    assert message.get_payload().strip() == "Hi Jane, your total is 12.50."


def test_send_fans_out_to_email_sms_webhook_and_push_outbox(
    make: Any, smtp_server: Any, http_server: Any, recorded: Any
) -> None:
    engine = make(
        notifications(smtp_server.port, http_server.url),
        """
        from ductape_cli import workflow

        @workflow("fan-out")
        async def fan_out(ctx):
            return await ctx.notification.send(notification="transactional", event="order-confirmed", input={
                "email": {"recipients": ["a@example.com"], "subject": {"orderId": "7"}, "template": {"name": "A", "total": 1}},
                "sms": {"phones": ["+15550100"], "message": {"orderId": "7", "status": "packed"}},
                "push": {"tokens": ["device-1"], "title": {"status": "packed"}, "body": {"name": "A", "total": 1}, "data": {"id": 7}},
            })
    """,
    )
    result = engine.run("fan-out", {})
    assert result["status"] == "completed", result["error"]
    out = result["output"]
    assert out["email"]["transport"] == "smtp"
    assert out["sms"]["transport"] == "webhook"
    assert out["push"]["transport"] == "outbox"
    sms = next(r for r in reversed(http_server.requests) if r["path"] == "/echo")
    assert sms["body"]["message"] == "Order 7: packed"
    assert sms["body"]["to"] == ["+15550100"]
    assert sms["headers"]["X-Api-Key"] == "sms-key-secret"
    push = json.loads(Path(out["push"]["file"]).read_text())
    assert (
        push["title"] == "Order packed"
        and push["body"] == "Hi A, your total is 1."
        and push["data"] == {"id": 7}
    )
    assert "sms-key-secret" not in recorded(engine, result["workflow_id"])


def test_outbox_writes_one_file_per_message(runtime: Any) -> None:
    import asyncio

    rt = runtime(notifications(1, "http://127.0.0.1:1"))
    first = asyncio.run(
        rt.notification.sms(
            notification="outbox-only", event="shipped", phones="+1555", message={"code": "991"}
        )
    )
    second = asyncio.run(
        rt.notification.push(
            notification="outbox-only",
            event="shipped",
            tokens=["t"],
            title={"orderId": "9"},
            body={"tracking": "Z1"},
        )
    )
    files = sorted((rt.config.root / "outbox").glob("*.json"))
    assert [str(f) for f in files] == sorted([first["file"], second["file"]])
    assert json.loads(Path(first["file"]).read_text())["message"] == "Your code is 991"
    assert json.loads(Path(second["file"]).read_text())["title"] == "Shipped: 9"


def test_template_missing_a_value_is_a_clear_error(runtime: Any) -> None:
    import pytest

    from ductape_cli.errors import InvalidInput

    rt = runtime(notifications(1, "http://127.0.0.1:1"))
    with pytest.raises(
        InvalidInput,
        match=r"\[notifications.outbox-only.events.shipped\] message template needs \{code\}; the call gave: pin",
    ):
        rt.notification.sms(
            notification="outbox-only", event="shipped", phones=["+1"], message={"pin": 1}
        )


def test_smtp_failure_is_a_notification_error(make: Any, unused_port: int) -> None:
    engine = make(
        notifications(unused_port, "http://127.0.0.1:1"),
        """
        from ductape_cli import workflow
        from ductape_cli.components import NotificationError

        @workflow("down")
        async def down(ctx):
            try:
                await ctx.notification.email(notification="transactional", event="order-confirmed", recipients=["a@b.c"],
                                             subject={"orderId": 1}, template={"name": "n", "total": 2}, retries=1)
            except NotificationError as exc:
                return str(exc)
    """,
    )
    result = engine.run("down", {})
    assert result["output"].startswith(f"email via 127.0.0.1:{unused_port} failed:")
    assert result["output"].endswith("(after 2 attempts)")
