"""What `ductape serve` is configured with: `[serve]` in ductape.toml, the token, the limits.

The token comes from `DUCTAPE_TOKEN`, or from `.ductape/serve.token` (created on
first serve with mode 0600 and printed once). Serving without a token
(`--no-auth`) is only allowed on a loopback address.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ductape_cli.config import ProjectConfig, config_error
from ductape_cli.errors import ConfigError, InvalidInput

TOKEN_FILE = "serve.token"
MIN_TOKEN_LENGTH = 16
_SERVE_KEYS = {"cors", "max_body_bytes", "max_subscriptions"}


@dataclass
class ServeSettings:
    token: str | None
    cors: list[str] = field(default_factory=list)
    max_body_bytes: int = 1_048_576
    max_subscriptions: int = 1_000
    queue_limit: int = 10_000  # events waiting for one slow subscriber before it is dropped
    poll_interval: float = 0.02  # seconds between reads of the store's feed


def serve_table(config: ProjectConfig) -> dict[str, object]:
    """`[serve]` checked: `cors` a list of origins, limits positive integers."""
    table = config.raw.get("serve", {})
    where = config.path or "ductape.toml"
    if not isinstance(table, dict):
        raise config_error(where, config.text, "serve", None, "must be a table")
    for key, value in table.items():
        if key not in _SERVE_KEYS:
            raise config_error(
                where,
                config.text,
                "serve",
                key,
                f"unknown key {key!r} (known: {', '.join(sorted(_SERVE_KEYS))})",
            )
        if key == "cors" and not (
            isinstance(value, list) and all(isinstance(v, str) and v for v in value)
        ):
            raise config_error(
                where,
                config.text,
                "serve",
                key,
                'cors must be a list of origins, e.g. ["http://localhost:5173"]',
            )
        if key != "cors" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise config_error(
                where, config.text, "serve", key, f"{key} must be a positive integer"
            )
    return table


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_token(config: ProjectConfig, *, announce: bool = True) -> tuple[str, bool]:
    """The API token and whether it was just created (then the caller prints it, once)."""
    given = os.environ.get("DUCTAPE_TOKEN")
    if given is not None:
        if len(given) < MIN_TOKEN_LENGTH:
            raise InvalidInput(f"DUCTAPE_TOKEN must be at least {MIN_TOKEN_LENGTH} characters")
        return given, False
    path = token_path(config)
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"{path} holds no usable token; delete it and serve again to make a new one"
            )
        return token, False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token, True


def token_path(config: ProjectConfig) -> Path:
    return config.root / ".ductape" / TOKEN_FILE


def settings_for(
    config: ProjectConfig, host: str, *, auth: bool = True
) -> tuple[ServeSettings, bool]:
    """Settings for serving on `host`; `(settings, token_is_new)`. Refuses no-auth off loopback."""
    table = serve_table(config)
    if not auth and not is_loopback(host):
        raise InvalidInput(
            f"refusing to serve {host} without a token: --no-auth is for loopback addresses only"
        )
    token, created = load_token(config) if auth else (None, False)
    settings = ServeSettings(token=token, cors=list(table.get("cors", [])))  # type: ignore[call-overload]
    for key in ("max_body_bytes", "max_subscriptions"):
        if key in table:
            setattr(settings, key, table[key])
    return settings, created
