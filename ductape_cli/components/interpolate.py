"""`${NAME}` in component tables: one pass over every string, and which filled values are secrets.

Every string value of a component table (at any depth: event headers, query,
paths, outbox, constants, provider fields...) is filled from the environment.
A filled value is a secret only when it sits in a secret position: an auth
header (`Authorization`, `Cookie`, or a name with key/token/secret/auth/
password/signature/session/credential in it), a key named in the component's
`secret = [...]` lists (a variable, a header, an smtp field...), an smtp
`password`, or the password of a database URL. A `${VAR}` used there is a
secret everywhere; one used in `base_url` or `path` is not.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_AUTH_HEADER = re.compile(
    r"authorization|cookie|key|token|secret|auth|passw|signature|session|credential", re.IGNORECASE
)

Path = tuple[str | int, ...]


class MissingVariable(Exception):
    """A `${NAME}` without a default whose variable is not set; `path` is where it was written."""

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name)
        self.name = name
        self.path = path


@dataclass
class Filled:
    """A table with every `${VAR}` filled, and the environment values used at each string's path."""

    value: Any
    used: dict[Path, list[str]] = field(default_factory=dict)


def fill(value: Any, path: Path = (), environ: Mapping[str, str] | None = None) -> Filled:
    """Fill `${NAME}` / `${NAME:-default}` in every string of `value` (keys are left as written)."""
    env = os.environ if environ is None else environ
    out = Filled(None)

    def walk(node: Any, where: Path) -> Any:
        if isinstance(node, str):
            used: list[str] = []

            def one(match: re.Match[str]) -> str:
                name, default = match.group(1), match.group(2)
                if name in env:
                    used.append(env[name])
                    return env[name]
                if default is not None:
                    return default
                raise MissingVariable(name, where)

            text = VAR.sub(one, node)
            if used:
                out.used[where] = used
            return text
        if isinstance(node, Mapping):
            return {key: walk(item, (*where, key)) for key, item in node.items()}
        if isinstance(node, list):
            return [walk(item, (*where, index)) for index, item in enumerate(node)]
        return node

    out.value = walk(value, path)
    return out


def variables_in(value: Any) -> set[str]:
    """Names of every `${NAME}` written anywhere in `value`."""
    if isinstance(value, str):
        return {m.group(1) for m in VAR.finditer(value)}
    if isinstance(value, Mapping):
        return set().union(*(variables_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(variables_in(v) for v in value)) if value else set()
    return set()


def is_auth_header(name: str) -> bool:
    return bool(_AUTH_HEADER.search(name))


def secret_fields_of(table: Mapping[str, Any]) -> set[str]:
    """Every name listed in a `secret = [...]` of a component or of its events (lower-case)."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            listed = node.get("secret")
            if isinstance(listed, list):
                names.update(str(n).lower() for n in listed)
            for item in node.values():
                walk(item)

    walk(table)
    return names


def config_secrets(filled: Filled, fields: Iterable[str]) -> list[str]:
    """The filled values in secret positions of one component table, and the `${VAR}` values inside them."""
    wanted = {f.lower() for f in fields}
    found: list[str] = []

    def everything(node: Any, where: Path) -> None:
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, Mapping):
            for key, item in node.items():
                everything(item, (*where, key))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                everything(item, (*where, index))
        found.extend(
            v for p, values in filled.used.items() if p[: len(where)] == where for v in values
        )

    def walk(node: Any, where: Path) -> None:
        if not isinstance(node, Mapping):
            if isinstance(node, list):
                for index, item in enumerate(node):
                    walk(item, (*where, index))
            return
        for key, item in node.items():
            here = (*where, key)
            name = str(key).lower()
            in_headers = bool(where) and where[-1] == "headers"
            if name in wanted or name == "password" or (in_headers and is_auth_header(str(key))):
                everything(item, here)
            elif name == "url" and isinstance(item, str):
                password = url_password(item)
                if password:
                    found.append(password)
                    found.extend(v for v in filled.used.get(here, []) if v in password)
            else:
                walk(item, here)

    walk(filled.value, ())
    return [s for s in dict.fromkeys(found) if s]


def url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def call_secrets(headers: Mapping[str, Any], fields: Iterable[str]) -> list[str]:
    """Values of a call's own headers that are secrets (auth headers and `secret` names)."""
    wanted = {f.lower() for f in fields}
    return [
        str(v) for k, v in headers.items() if is_auth_header(str(k)) or str(k).lower() in wanted
    ]


def redact_auth_headers(headers: Any, fields: Iterable[str]) -> Any:
    """Headers as recorded: auth headers and `secret` names become ``***``, the rest stay readable."""
    from ductape_cli.components.errors import REDACTED

    if not isinstance(headers, Mapping):
        return headers
    wanted = {f.lower() for f in fields}
    return {
        k: REDACTED if is_auth_header(str(k)) or str(k).lower() in wanted else v
        for k, v in headers.items()
    }
