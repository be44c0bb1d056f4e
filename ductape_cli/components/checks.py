"""Checking the component tables before a command runs anything, and the calls workflows make.

`run`, `worker`, `dev` and `define` call `validate_components` first, so a
misspelt key or an unset `${VAR}` stops them with exit 2 and the file:line,
before a single step (or store write) happens, instead of failing a run
half-way. `undeclared_calls` compares the component calls a definition
recorded with what `ductape.toml` declares.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ductape_cli.config import COMPONENT_TABLES
from ductape_cli.errors import ConfigError

if TYPE_CHECKING:
    from ductape_cli.config import ProjectConfig
    from ductape_cli.engine.engine import Engine

TABLES = COMPONENT_TABLES

# component kind -> (table its first argument names, keyword of that argument, table of its events)
_NAMED_BY = {
    "action": ("apps", "app", "events"),
    "database": ("databases", "database", "events"),
    "notification": ("notifications", "notification", "events"),
    "storage": ("storage", "storage", "events"),
    "quota": ("quotas", "quota", None),
    "fallback": ("fallbacks", "fallback", None),
    "graph": ("graphs", "graph", "actions"),
}


def validate_components(project: ProjectConfig, env: str | None) -> None:
    """Raise `ConfigError` (exit 2) for the first problem a run in `env` would meet in a component table."""
    if not any(project.raw.get(table) for table in TABLES):
        return  # nothing declared: no need to load pydantic
    from ductape_cli.components.config import load_components

    problems = load_components(project).check(env)
    if problems:
        more = (
            f" (and {len(problems) - 1} more: ductape components check --env {env})"
            if len(problems) > 1
            else ""
        )
        raise ConfigError(problems[0] + more)


def components_report(engine: Engine, env: str) -> dict[str, Any]:
    """What `ductape components check` prints: every declared component, and every problem a run would meet.

    Problems are the tables' own (unset `${VAR}`, a value invalid once filled)
    and the component calls of stored definitions that name something undeclared.
    """
    from ductape_cli.components.config import load_components
    from ductape_cli.engine.triggers import check_toml_triggers

    components = load_components(engine.config)
    check_toml_triggers(
        engine.config, components
    )  # a [triggers] entry naming no declared broker or topic
    problems = components.check(env)
    if engine.has_store():
        latest = {
            record["tag"]: record for record in engine.store.list_definitions()
        }  # oldest first
        for tag, record in latest.items():
            operations = record["schema"].get("operations", [])
            problems += [
                f"workflow {tag!r} at {line}"
                for line in undeclared_calls(engine.config, operations)
            ]
    return {
        "ok": not problems,
        "env": env,
        "components": components.summary(),
        "problems": list(dict.fromkeys(problems)),
    }


def undeclared_calls(project: ProjectConfig, operations: Iterable[dict[str, Any]]) -> list[str]:
    """One line per recorded component call naming an app, database, ... (or event, topic) not declared."""
    found: list[str] = []
    for op in operations:
        if op.get("kind") != "component":
            continue
        problem = _undeclared(project.raw, op)
        if problem is not None:
            where = op.get("source") or ""
            found.append(f"{_short(where)}: {problem}" if where else problem)
    return list(dict.fromkeys(found))


def _undeclared(raw: dict[str, Any], op: dict[str, Any]) -> str | None:
    kind, args = op.get("component"), dict(op.get("args") or {})
    positional = list(op.get("positional") or [])
    if positional and isinstance(positional[0], dict):
        args = {**{_snake(k): v for k, v in positional[0].items()}, **args}
        positional = []
    if kind == "messaging":
        return _undeclared_topic(raw, args, positional)
    if kind not in _NAMED_BY:
        return None
    table, keyword, events_key = _NAMED_BY[kind]
    name = args.get(keyword, positional[0] if positional else None)
    if not _literal(name):
        return None
    spec = (raw.get(table) or {}).get(name)
    if not isinstance(spec, dict):
        return f"ctx.{kind} names {keyword} {name!r}, which is not declared in [{table}]"
    if events_key is None or (kind == "graph" and op.get("method") not in ("query", "execute")):
        return None
    event_arg = "action" if kind == "graph" else "event"
    event = args.get(event_arg, positional[1] if len(positional) > 1 else None)
    declared = spec.get(events_key)
    if not _literal(event) or (
        kind == "storage" and not declared
    ):  # a storage without events takes any
        return None
    if not isinstance(declared, dict) or event not in declared:
        return f"ctx.{kind} names {event_arg} {event!r}, which [{table}.{name}] does not declare"
    if kind == "notification":
        return _missing_transport(spec, name, op.get("method"), args)
    return None


def _missing_transport(
    spec: dict[str, Any], name: Any, method: Any, args: dict[str, Any]
) -> str | None:
    """A channel the call uses that has neither its transport nor an outbox."""
    if spec.get("outbox"):
        return None
    transports = {"email": "smtp", "sms": "sms", "push": "push"}
    channels = (
        [method]
        if method in transports
        else [c for c in args.get("input") or {} if c in transports]
    )
    for channel in channels:
        if not spec.get(transports[channel]):
            return f"ctx.notification.{method} sends {channel}, but [notifications.{name}] has no {transports[channel]} or outbox"
    return None


def _undeclared_topic(
    raw: dict[str, Any], args: dict[str, Any], positional: list[Any]
) -> str | None:
    event = args.get("event", positional[0] if positional else None)
    broker, topic = args.get("broker"), args.get("topic")
    if isinstance(event, str) and _literal(event) and ":" in event:
        broker, _, topic = event.partition(":")
    if not _literal(broker):
        return None
    spec = (raw.get("brokers") or {}).get(broker)
    if not isinstance(spec, dict):
        return f"ctx.messaging names broker {broker!r}, which is not declared in [brokers]"
    if _literal(topic) and topic not in (spec.get("topics") or []):
        return (
            f"ctx.messaging names topic {topic!r}, which [brokers.{broker}] topics does not declare"
        )
    return None


def _literal(value: Any) -> bool:
    """A name written in the source (not a placeholder or a runtime value's type)."""
    return isinstance(value, str) and bool(value) and not value.startswith(("$", "<"))


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _short(site: str) -> str:
    from ductape_cli.sites import display_path

    return display_path(site)
