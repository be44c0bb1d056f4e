"""`ctx.action.run(app=, event=, input={body, params, query, headers})`: HTTP calls to declared apps.

The event gives method and path (``/items/{id}`` is filled from
``input.params``); headers merge app < event < call. A 2xx response returns its
JSON (or text); anything else raises `ActionError` with `status_code` and
`body`. `retries=` are made inside the call (5xx, 408, 429, timeouts and
connection errors; other 4xx fail at once) with a short doubling backoff.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ductape_cli.components.errors import ActionError, redact, scrub
from ductape_cli.components.interpolate import call_secrets, redact_auth_headers
from ductape_cli.components.runtime import (
    Component,
    check_mapping,
    check_retries,
    secret_values,
    seed_style,
    without_secrets,
)
from ductape_cli.durations import parse_duration
from ductape_cli.errors import InvalidInput
from ductape_cli.observe import tracing

if TYPE_CHECKING:
    from ductape_cli.components.config import AppEvent

INPUT_KEYS = ("body", "params", "query", "headers", "form")
_PLACEHOLDER = re.compile(r"\{([^{}/]+)\}")
_RETRY_STATUS = {408, 429}
_MAX_BACKOFF = 2.0
_BODY_LIMIT = 2000


@dataclass
class Request:
    """One prepared call: everything needed to send it, and what to hide when reporting it."""

    app: str
    event: str
    method: str
    path: str
    url: str
    query: dict[str, Any]
    headers: dict[str, str]
    input: dict[str, Any]
    timeout_ms: int
    retries: int
    retry_delay_ms: int
    secrets: list[str]
    recorded: dict[str, Any]
    secret_fields: list[str]


class Action(Component):
    kind = "action"

    @seed_style
    def run(
        self,
        app: str,
        event: str,
        input: dict[str, Any] | None = None,
        *,
        retries: int | None = None,
        timeout: int | str | None = None,
    ) -> Any:
        """Call `event` of `app`; returns the decoded response body."""
        request = self.prepare(app, event, input, retries=retries, timeout=timeout)
        work = without_secrets(lambda: send(request), request.secret_fields, request.secrets)
        return self._dispatch(f"action:{app}:{event}", request.recorded, work)

    def prepare(
        self,
        app: str,
        event: str,
        input: Any,
        *,
        retries: int | None = None,
        timeout: int | str | None = None,
    ) -> Request:
        """Resolve app and event for this run's env and build the request (errors are immediate)."""
        config = self.config
        resolved = config.app(app, self.runtime.env)
        spec: AppEvent = config.event("apps", app, resolved.model, event)
        call = check_mapping(input, "input")
        unknown = sorted(set(call) - set(INPUT_KEYS))
        if unknown:
            raise InvalidInput(
                f"action {app}.{event}: unknown input key(s) {', '.join(unknown)} (use {', '.join(INPUT_KEYS)}; "
                "the request body goes in input.body)"
            )
        params = check_mapping(call.get("params"), "input.params")
        call_headers = {
            str(k): str(v) for k, v in check_mapping(call.get("headers"), "input.headers").items()
        }
        path = fill_path(spec.path, params, f"{app}.{event}")
        retries = check_retries(retries)
        if retries is None:
            retries = spec.retries if spec.retries is not None else resolved.model.retries
        if timeout is not None:
            timeout_ms = parse_duration(timeout, what="timeout") or 0
        else:
            timeout_ms = spec.timeout if spec.timeout is not None else resolved.model.timeout
        secret_fields = [*resolved.model.secret, *spec.secret]
        secrets = [
            *resolved.secret_values,
            *call_secrets(call_headers, secret_fields),
            *secret_values(call, secret_fields),
        ]
        recorded: dict[str, Any] = {
            "app": app,
            "event": event,
            "input": recorded_input(call, secret_fields, secrets),
        }
        if retries:
            recorded["retries"] = retries
        if timeout is not None:
            recorded["timeout_ms"] = timeout_ms
        return Request(
            app=app,
            event=event,
            method=spec.method,
            path=path,
            url=resolved.base_url + path,
            query={**spec.query, **check_mapping(call.get("query"), "input.query")},
            headers={**resolved.headers, **spec.headers, **call_headers},
            input=call,
            timeout_ms=timeout_ms,
            retries=retries,
            retry_delay_ms=resolved.model.retry_delay,
            secrets=secrets,
            recorded=recorded,
            secret_fields=secret_fields,
        )


def recorded_input(
    call: dict[str, Any], secret_fields: list[str], secrets: list[str]
) -> dict[str, Any]:
    """The call's input as a step records it: header values and `secret` fields become ``***``."""
    shown = redact(call, secret_fields)
    if "headers" in shown:
        shown["headers"] = redact_auth_headers(shown["headers"], secret_fields)
    return scrub(shown, secrets)


def fill_path(template: str, params: dict[str, Any], where: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params or params[name] is None:
            raise InvalidInput(f"action {where}: path {template} needs input.params.{name}")
        return quote(str(params[name]), safe="")

    return _PLACEHOLDER.sub(one, template)


async def send(request: Request) -> Any:
    """Send `request`, retrying what may succeed on a second try; raise `ActionError` otherwise."""
    import httpx

    from ductape_cli.components.tls import client_context

    attempts = request.retries + 1
    error: ActionError | None = None
    headers = dict(request.headers)
    tracing.inject(headers)  # the calling step's span as `traceparent`, when tracing is on
    kwargs: dict[str, Any] = {"params": _query(request.query), "headers": headers}
    body, form = request.input.get("body"), request.input.get("form")
    if form is not None:
        kwargs["data"] = form
    elif isinstance(body, (bytes, bytearray)):
        kwargs["content"] = bytes(body)
    elif isinstance(body, str):
        kwargs["content"] = body.encode()
        if not any(k.lower() == "content-type" for k in request.headers):
            kwargs["headers"] = {**headers, "Content-Type": "text/plain; charset=utf-8"}
    elif body is not None:
        kwargs["json"] = body
    where = f"{request.method} {request.path}"
    timeout = httpx.Timeout(request.timeout_ms / 1000 if request.timeout_ms else None)
    async with httpx.AsyncClient(timeout=timeout, verify=client_context()) as client:
        for attempt in range(1, attempts + 1):
            retryable = True
            try:
                response = await client.request(request.method, request.url, **kwargs)
            except httpx.TimeoutException:
                error = ActionError(f"{where} -> timed out after {request.timeout_ms} ms")
            except httpx.HTTPError as exc:
                base = request.url[: len(request.url) - len(request.path)]
                error = ActionError(f"{where} -> cannot reach {base}: {exc or type(exc).__name__}")
            else:
                if 200 <= response.status_code < 300:
                    return _decode(response)
                payload = _decode(response)
                error = ActionError(
                    f"{where} -> {response.status_code}: {_snippet(payload) or response.reason_phrase}",
                    response.status_code,
                    _limit(payload),
                )
                retryable = response.status_code >= 500 or response.status_code in _RETRY_STATUS
            if not retryable or attempt == attempts:
                break
            await asyncio.sleep(
                min(request.retry_delay_ms / 1000 * 2 ** (attempt - 1), _MAX_BACKOFF)
            )
    assert error is not None
    if attempts > 1 and attempt > 1:
        error.message = f"{error.message} (after {attempt} attempts)"
    body = scrub(redact(error.body, request.secret_fields), request.secrets)
    clean = ActionError(scrub(error.message, request.secrets), error.status_code, body)
    raise clean


def _query(query: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (json.dumps(v) if isinstance(v, bool) else v) for k, v in query.items() if v is not None
    }


def _decode(response: Any) -> Any:
    if not response.content:
        return None
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text


def _snippet(payload: Any, limit: int = 200) -> str:
    if payload is None:
        return ""
    text = (
        payload
        if isinstance(payload, str)
        else json.dumps(payload, ensure_ascii=False, default=str)
    )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _limit(payload: Any) -> Any:
    if isinstance(payload, str) and len(payload) > _BODY_LIMIT:
        return payload[:_BODY_LIMIT] + "…"
    return payload
