"""`ctx.notification.email/sms/push/send`: fill an event's templates and deliver them.

Templates (`subject`, `body`, `html`, `message`, `title` in
`[notifications.X.events.E]`) are filled with `str.format_map` from the call's
values. Email goes over SMTP (`smtp = {host, port, starttls, ssl, from,
username, password}`), sms and push are POSTed as JSON to their `webhook`; a
channel without a transport writes one JSON file per message to `outbox`.
"""

from __future__ import annotations

import asyncio
import json
import secrets as token
import smtplib
import ssl
import time
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from ductape_cli.components.config import NotificationEvent, ResolvedNotification, Smtp, Webhook
from ductape_cli.components.errors import NotificationError, redact, scrub
from ductape_cli.components.runtime import (
    Component,
    check_mapping,
    check_retries,
    secret_values,
    seed_style,
    without_secrets,
)
from ductape_cli.errors import InvalidInput

CHANNELS = ("email", "sms", "push")
_RETRY_DELAY = 0.2


class NotificationComponent(Component):
    kind = "notification"

    @seed_style
    def email(
        self,
        notification: str,
        event: str,
        recipients: list[str] | str,
        subject: Mapping[str, Any] | str | None = None,
        template: Mapping[str, Any] | None = None,
        *,
        cc: list[str] | None = None,
        bcc: list[str] | None = None,
        retries: int | None = None,
    ) -> Any:
        """Send the event's email to `recipients`; `subject`/`template` fill its subject/body."""
        values = {
            "recipients": recipients,
            "subject": subject,
            "template": template,
            "cc": cc,
            "bcc": bcc,
        }
        return self._send(notification, event, {"email": values}, retries, single="email")

    @seed_style
    def sms(
        self,
        notification: str,
        event: str,
        phones: list[str] | str,
        message: Mapping[str, Any] | str | None = None,
        *,
        retries: int | None = None,
    ) -> Any:
        """Send the event's sms `message` template to `phones`."""
        return self._send(
            notification,
            event,
            {"sms": {"phones": phones, "message": message}},
            retries,
            single="sms",
        )

    @seed_style
    def push(
        self,
        notification: str,
        event: str,
        tokens: list[str] | str,
        title: Mapping[str, Any] | str | None = None,
        body: Mapping[str, Any] | str | None = None,
        data: Mapping[str, Any] | None = None,
        *,
        retries: int | None = None,
    ) -> Any:
        """Send the event's push `title`/`body` to device `tokens`, with `data` passed through."""
        values = {"tokens": tokens, "title": title, "body": body, "data": data}
        return self._send(notification, event, {"push": values}, retries, single="push")

    @seed_style
    def send(
        self, notification: str, event: str, input: Mapping[str, Any], *, retries: int | None = None
    ) -> Any:
        """Fan out to every channel named in `input` (`email`, `sms`, `push`); returns one result per channel."""
        channels = check_mapping(input, "input")
        unknown = sorted(set(channels) - set(CHANNELS))
        if unknown or not channels:
            raise InvalidInput(
                f"notification.send: input needs one or more of {', '.join(CHANNELS)}; got {', '.join(channels) or 'nothing'}"
            )
        return self._send(notification, event, channels, retries, single=None)

    def _send(
        self,
        notification: str,
        event: str,
        channels: dict[str, Any],
        retries: int | None,
        single: str | None,
    ) -> Any:
        resolved = self.config.notification(notification)
        spec: NotificationEvent = self.config.event(
            "notifications", notification, resolved.model, event
        )
        retries = check_retries(retries)
        attempts = 1 + (retries if retries is not None else resolved.model.retries)
        where = f"notifications.{notification}.events.{event}"
        for name in channels:
            if not _has_transport(resolved, name):
                transport = "smtp" if name == "email" else name
                raise self.config.error(
                    f"notifications.{notification}",
                    None,
                    f"no {name} transport: set {transport} or outbox",
                )
        messages = {
            name: _compose(name, spec, check_mapping(values, f"input.{name}"), where)
            for name, values in channels.items()
        }
        secret_fields = [*resolved.model.secret, *spec.secret]
        secrets = [*resolved.secret_values, *secret_values(channels, secret_fields)]
        recorded = scrub(
            {
                "notification": notification,
                "event": event,
                "input": redact(channels, secret_fields),
            },
            secrets,
        )
        meta = {"notification": notification, "event": event}

        async def work() -> Any:
            results = {}
            for name, message in messages.items():
                results[name] = await _deliver(
                    resolved, name, {**meta, **message}, attempts, secrets
                )
            return results[single] if single else results

        return self._dispatch(
            f"notification:{notification}:{event}",
            recorded,
            without_secrets(work, secret_fields, secrets),
        )


def _list(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, (list, tuple))
        or not value
        or not all(isinstance(v, str) and v for v in value)
    ):
        raise InvalidInput(f"{what} must be a non-empty list of strings, got {value!r}")
    return list(value)


def _fill(template: str | None, values: Any, what: str, where: str) -> str | None:
    """`values` fills the event's template; a plain string given by the call is used as is."""
    if isinstance(values, str):
        return values
    if template is None:
        if values:
            raise InvalidInput(f"[{where}] has no {what} template to fill")
        return None
    mapping = dict(values or {})
    try:
        return template.format_map(mapping)
    except KeyError as exc:
        known = ", ".join(sorted(mapping)) or "none"
        raise InvalidInput(
            f"[{where}] {what} template needs {{{exc.args[0]}}}; the call gave: {known}"
        ) from None
    except (IndexError, ValueError, AttributeError) as exc:
        raise InvalidInput(
            f"[{where}] {what} template {template!r} cannot be filled: {exc}"
        ) from None


def _compose(
    channel: str, spec: NotificationEvent, values: dict[str, Any], where: str
) -> dict[str, Any]:
    """The message for one channel, templates filled (errors here are immediate, not a failed step)."""
    if channel == "email":
        template = check_mapping(values.get("template"), "template")
        subject_values = values.get("subject")
        if isinstance(subject_values, Mapping):
            subject_values = {**template, **subject_values}
        elif subject_values is None:
            subject_values = template
        subject = _fill(spec.subject, subject_values, "subject", where)
        body = _fill(spec.body, template, "body", where)
        if subject is None or body is None:
            raise InvalidInput(f"[{where}] email needs subject and body templates")
        message: dict[str, Any] = {
            "to": _list(values.get("recipients"), "recipients"),
            "subject": subject,
            "body": body,
        }
        if spec.html:
            message["html"] = _fill(spec.html, template, "html", where)
        for key in ("cc", "bcc"):
            if values.get(key):
                message[key] = _list(values[key], key)
        return message
    if channel == "sms":
        text = _fill(spec.message, values.get("message") or {}, "message", where)
        if text is None:
            raise InvalidInput(f"[{where}] sms needs a message template")
        return {"to": _list(values.get("phones"), "phones"), "message": text}
    title = _fill(spec.title, values.get("title") or {}, "title", where)
    body = _fill(spec.body, values.get("body") or {}, "body", where)
    if title is None and body is None:
        raise InvalidInput(f"[{where}] push needs a title or body template")
    return {
        "to": _list(values.get("tokens"), "tokens"),
        "title": title,
        "body": body,
        "data": check_mapping(values.get("data"), "data"),
    }


async def _deliver(
    note: ResolvedNotification,
    channel: str,
    message: dict[str, Any],
    attempts: int,
    secrets: list[str],
) -> dict[str, Any]:
    error: NotificationError | None = None
    for attempt in range(1, attempts + 1):
        try:
            if channel == "email" and note.smtp is not None:
                return await asyncio.to_thread(_smtp_send, note.smtp, message)
            hook = note.sms if channel == "sms" else note.push if channel == "push" else None
            if hook is not None:
                return await _webhook(hook, channel, message)
            assert note.outbox is not None
            return await asyncio.to_thread(_outbox, note.outbox, channel, message)
        except NotificationError as exc:
            error = exc
        if attempt < attempts:
            await asyncio.sleep(_RETRY_DELAY * 2 ** (attempt - 1))
    assert error is not None
    suffix = f" (after {attempts} attempts)" if attempts > 1 else ""
    raise NotificationError(scrub(str(error), secrets) + suffix)


def _has_transport(note: ResolvedNotification, channel: str) -> bool:
    transport = {"email": note.smtp, "sms": note.sms, "push": note.push}[channel]
    return transport is not None or note.outbox is not None


def _smtp_send(smtp: Smtp, message: dict[str, Any]) -> dict[str, Any]:
    # A CR or LF in a header would let a filled-in value add headers (Bcc:) of its own.
    headers = {
        "From": [smtp.sender],
        "To": message["to"],
        "Cc": message.get("cc", []),
        "Bcc": message.get("bcc", []),
        "Subject": [message["subject"]],
    }
    for name, values in headers.items():
        if any("\r" in value or "\n" in value for value in values):
            raise NotificationError(f"email {name} header contains a line break (CR/LF); not sent")
    email = EmailMessage()
    email["From"] = smtp.sender
    email["To"] = ", ".join(message["to"])
    if message.get("cc"):
        email["Cc"] = ", ".join(message["cc"])
    email["Subject"] = message["subject"]
    message_id = make_msgid(domain=smtp.sender.rpartition("@")[2] or None)
    email["Message-ID"] = message_id
    email.set_content(message["body"])
    if message.get("html"):
        email.add_alternative(message["html"], subtype="html")
    recipients = [*message["to"], *message.get("cc", []), *message.get("bcc", [])]
    client_class = smtplib.SMTP_SSL if smtp.ssl else smtplib.SMTP
    try:
        with client_class(smtp.host, smtp.port, timeout=smtp.timeout / 1000) as client:
            if smtp.starttls and not smtp.ssl:
                client.starttls(context=ssl.create_default_context())
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            refused = client.send_message(email, to_addrs=recipients)
    except (smtplib.SMTPException, OSError) as exc:
        raise NotificationError(f"email via {smtp.host}:{smtp.port} failed: {exc}") from None
    delivered = [r for r in recipients if r not in refused]
    return {
        "channel": "email",
        "transport": "smtp",
        "to": delivered,
        "refused": sorted(refused),
        "subject": message["subject"],
        "message_id": message_id,
    }


async def _webhook(hook: Webhook, channel: str, message: dict[str, Any]) -> dict[str, Any]:
    import httpx

    from ductape_cli.components.tls import client_context

    try:
        async with httpx.AsyncClient(
            timeout=hook.timeout / 1000, verify=client_context()
        ) as client:
            response = await client.post(
                hook.webhook, json={"channel": channel, **message}, headers=hook.headers
            )
    except httpx.HTTPError as exc:
        raise NotificationError(
            f"{channel} webhook {hook.webhook} failed: {exc or type(exc).__name__}"
        ) from None
    if not 200 <= response.status_code < 300:
        raise NotificationError(
            f"{channel} webhook {hook.webhook} -> {response.status_code}: {response.text[:200]}"
        )
    return {
        "channel": channel,
        "transport": "webhook",
        "to": message["to"],
        "status_code": response.status_code,
    }


def _outbox(folder: Path, channel: str, message: dict[str, Any]) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{int(time.time() * 1000)}-{channel}-{token.token_hex(4)}.json"
    record = {"channel": channel, "created_at": time.time(), **message}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(
        json.dumps(record, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )
    temporary.replace(path)
    return {"channel": channel, "transport": "outbox", "to": message["to"], "file": str(path)}
