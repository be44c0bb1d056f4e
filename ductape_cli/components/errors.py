"""Errors component calls raise, and the redaction applied to anything recorded.

Every component error is a `DuctapeError` (an ordinary `Exception`: a handler
may catch it) carrying a `code`; the step machinery records `code`,
`status_code` and `body`. One reaching the command line is a failure of the
outside world, so it exits 1, not 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ductape_cli.errors import EXIT_FAILED, DuctapeError

REDACTED = "***"
_MIN_SECRET = 4  # shorter values would blank out ordinary words in messages


class ComponentError(DuctapeError):
    exit_code = EXIT_FAILED
    code = "COMPONENT_ERROR"


class ActionError(ComponentError):
    """An HTTP call failed: non-2xx status, timeout or connection error (`status_code` None)."""

    code = "ACTION_ERROR"

    def __init__(self, message: str, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class DatabaseError(ComponentError):
    code = "DATABASE_ERROR"


class NotificationError(ComponentError):
    code = "NOTIFICATION_ERROR"


class StorageError(ComponentError):
    code = "STORAGE_ERROR"


class MessagingError(ComponentError):
    code = "MESSAGING_ERROR"


class QuotaError(ComponentError):
    code = "QUOTA_ERROR"


class FallbackError(ComponentError):
    """Every provider failed; `errors` holds one ``{app, event, error, status_code}`` per provider."""

    code = "FALLBACK_ERROR"

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class GraphError(ComponentError):
    code = "GRAPH_ERROR"


ERROR_CLASSES: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        ActionError,
        DatabaseError,
        NotificationError,
        StorageError,
        MessagingError,
        QuotaError,
        FallbackError,
        GraphError,
    )
}


def redact(value: Any, keys: Iterable[str]) -> Any:
    """A copy of `value` where every mapping entry named in `keys` (any depth, any case) is ``***``."""
    names = {k.lower() for k in keys}
    if not names:
        return value
    return _redact(value, names)


def _redact(value: Any, names: set[str]) -> Any:
    if isinstance(value, Mapping):
        return {
            k: REDACTED if str(k).lower() in names else _redact(v, names) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redact(v, names) for v in value]
    return value


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """Replace every occurrence of a secret value inside strings (messages, response bodies)."""
    found = sorted(
        {s for s in secrets if isinstance(s, str) and len(s) >= _MIN_SECRET}, key=len, reverse=True
    )
    if not found:
        return value
    return _scrub(value, found)


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, Mapping):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    return value
