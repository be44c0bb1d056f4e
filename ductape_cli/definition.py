"""Workflow definitions: `define(...)` and its decorator form `@workflow(...)`.

A definition is plain data plus the handler; modules that call `define` at
import time register it with whichever collector discovery has installed.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ductape_cli.digest import sha256
from ductape_cli.durations import parse_duration
from ductape_cli.errors import DefinitionError, InvalidInput
from ductape_cli.models import RollbackStrategy

SCHEMA_FORMAT = (
    1  # bump when the compiled schema's shape changes: every stored definition becomes stale
)
SIGNAL_FIELD_TYPES = {"string", "number", "integer", "boolean", "object", "array", "any"}

# Discovery swaps this list in while importing a module, to learn what it defines.
_collector: list[WorkflowDefinition] | None = None


@dataclass
class WorkflowDefinition:
    tag: str
    handler: Callable[..., Any]
    name: str = ""
    description: str = ""
    rollback_strategy: RollbackStrategy = RollbackStrategy.REVERSE_ALL
    timeout_ms: int | None = None
    signals: dict[str, dict[str, str]] = field(default_factory=dict)
    queries: dict[str, Callable[..., Any]] = field(default_factory=dict)
    branch_overrides: dict[str, Any] = field(default_factory=dict)
    record_input: dict[str, Any] | None = None
    record_scenarios: list[dict[str, Any]] = field(default_factory=list)
    input_model: Any = None
    max_events: int | None = None
    envs: list[str] | None = None  # the envs it may run in (None: every env of ductape.toml)
    inactive_envs: list[str] = field(default_factory=list)  # listed with active=False: refused
    product: str | None = None
    on_message: str | None = None  # "broker:topic": `ductape worker` starts a run per message
    source_file: str | None = None
    source_line: int | None = None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)

    def query(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of `queries=`: ``@wf.query("getProgress")``."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.queries[name] = fn
            return fn

        return register

    def options_summary(self) -> dict[str, Any]:
        """The options that matter to a stored definition (JSON-able)."""
        return {
            "name": self.name,
            "description": self.description,
            "rollback_strategy": str(self.rollback_strategy),
            "timeout_ms": self.timeout_ms,
            "signals": self.signals,
            "queries": sorted(self.queries),
            "max_events": self.max_events,
            "product": self.product,
            "envs": [{"slug": e, "active": e not in self.inactive_envs} for e in self.envs or []],
        }

    def validate_input(self, value: Any) -> Any:
        """Check input against `input_model` (pydantic) before a run is created; without one, input is a JSON object."""
        if self.input_model is None:
            if not isinstance(value, dict):
                kind = {
                    list: "an array",
                    str: "a string",
                    bool: "a boolean",
                    int: "a number",
                    float: "a number",
                }.get(type(value), "null")
                raise InvalidInput(
                    f"input for {self.tag} must be a JSON object, got {kind} (declare input_model= to accept other JSON)"
                )
            return value
        try:
            model = self.input_model.model_validate(value)
        except Exception as exc:  # pydantic.ValidationError, without importing pydantic here
            errors = getattr(exc, "errors", None)
            if callable(errors):
                first = errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ())) or "input"
                raise InvalidInput(
                    f"invalid input for {self.tag}: {where}: {first.get('msg')}"
                ) from None
            raise InvalidInput(f"invalid input for {self.tag}: {exc}") from None
        return model.model_dump(mode="json")

    def validate_signal(self, name: str, payload: Any) -> None:
        """Refuse undeclared signals and payloads whose fields are missing or mistyped."""
        if not self.signals:
            return
        if name not in self.signals:
            known = ", ".join(sorted(self.signals)) or "none"
            raise InvalidInput(
                f"workflow {self.tag} declares no signal {name!r} (declared: {known})"
            )
        spec = self.signals[name]
        if not spec:
            return
        if not isinstance(payload, dict):
            raise InvalidInput(
                f"signal {name!r} expects a JSON object with fields {', '.join(spec)}"
            )
        for field_name, type_name in spec.items():
            optional = type_name.endswith("?")
            type_name = type_name.rstrip("?")
            if field_name not in payload or payload[field_name] is None:
                if optional:
                    continue
                raise InvalidInput(f"signal {name!r} is missing field {field_name!r} ({type_name})")
            if not _has_type(payload[field_name], type_name):
                got = type(payload[field_name]).__name__
                raise InvalidInput(
                    f"signal {name!r} field {field_name!r} must be {type_name}, got {got}"
                )


def source_hash_of(wf: WorkflowDefinition) -> str:
    """Hash of the module source and options: when it changes, the stored definition is stale.

    Lives here, not in the compiler, so that `run` can check freshness without importing it.
    """
    digest = sha256(f"ductape-schema-{SCHEMA_FORMAT}".encode())
    if wf.source_file and Path(wf.source_file).is_file():
        digest.update(Path(wf.source_file).read_bytes())
    else:
        digest.update(getattr(wf.handler, "__qualname__", wf.tag).encode())
    digest.update(json.dumps(wf.options_summary(), sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def _has_type(value: Any, type_name: str) -> bool:
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "any": lambda v: True,
    }
    return checks[type_name](value)


def _normalise_signals(tag: str, signals: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    result: dict[str, dict[str, str]] = {}
    for name, spec in (signals or {}).items():
        if (
            isinstance(spec, Mapping)
            and set(spec) == {"input"}
            and isinstance(spec["input"], Mapping)
        ):
            spec = spec["input"]  # the seed's {"approve": {"input": {...}}} form
        if spec is None:
            spec = {}
        if not isinstance(spec, Mapping):
            raise DefinitionError(f"workflow {tag}: signal {name!r} must map field names to types")
        for field_name, type_name in spec.items():
            if not isinstance(type_name, str) or type_name.rstrip("?") not in SIGNAL_FIELD_TYPES:
                raise DefinitionError(
                    f"workflow {tag}: signal {name!r} field {field_name!r} has type {type_name!r}; "
                    f"use one of {', '.join(sorted(SIGNAL_FIELD_TYPES))} (append ? for optional)"
                )
        result[str(name)] = {str(k): str(v) for k, v in spec.items()}
    return result


def _normalise_queries(
    tag: str, queries: Mapping[str, Any] | None
) -> dict[str, Callable[..., Any]]:
    result: dict[str, Callable[..., Any]] = {}
    for name, spec in (queries or {}).items():
        handler = spec.get("handler") if isinstance(spec, Mapping) else spec
        if not callable(handler):
            raise DefinitionError(f"workflow {tag}: query {name!r} needs a callable handler")
        result[str(name)] = handler
    return result


OPTION_NAMES = (
    "name",
    "description",
    "rollback_strategy",
    "timeout",
    "signals",
    "queries",
    "branch_overrides",
    "record_input",
    "record_scenarios",
    "input_model",
    "max_events",
    "envs",
    "product",
    "on_message",
)


def snake_case(name: str) -> str:
    """The seed's camelCase option names (`branchOverrides`) as ours (`branch_overrides`)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _gather_options(tag: str, *layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge option layers (later wins), accepting camelCase; an unknown name is an error naming it."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            name = snake_case(str(key))
            if name not in OPTION_NAMES:
                import difflib

                close = difflib.get_close_matches(name, OPTION_NAMES, n=1)
                hint = (
                    f"; did you mean {close[0]}?"
                    if close
                    else f" (options: {', '.join(OPTION_NAMES)})"
                )
                raise DefinitionError(f"workflow {tag}: unknown option {key!r}{hint}")
            if value is not None:
                merged[name] = value
    return merged


def _envs(tag: str, envs: Any) -> tuple[list[str] | None, list[str]]:
    """`envs=["dev", {"slug": "prd", "active": False}]` -> (every listed env, the inactive ones)."""
    if not envs:
        return None, []
    names, inactive = [], []
    for env in envs:
        if isinstance(env, Mapping):
            slug = env.get("slug") or env.get("name")
            if not isinstance(slug, str) or not slug:
                raise DefinitionError(f"workflow {tag}: each env needs a slug, got {dict(env)!r}")
            names.append(slug)
            if env.get("active", True) is False:
                inactive.append(slug)
        else:
            names.append(str(env))
    return names, inactive


def define(
    tag: str | Mapping[str, Any] | None = None,
    handler: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    rollback_strategy: str | None = None,
    timeout: int | str | None = None,
    signals: Mapping[str, Any] | None = None,
    queries: Mapping[str, Any] | None = None,
    branch_overrides: Mapping[str, Any] | None = None,
    record_input: Mapping[str, Any] | None = None,
    record_scenarios: list[Mapping[str, Any]] | None = None,
    input_model: Any = None,
    max_events: int | None = None,
    envs: list[Any] | None = None,
    on_message: str | None = None,
    product: str | None = None,
    options: Mapping[str, Any] | None = None,
    **seed_names: Any,
) -> WorkflowDefinition:
    """Define a workflow (the seed's ``ductape.workflows.define({...})``).

    Example: ``define(tag="user-onboarding", handler=onboard, timeout="5m")``, or the seed's
    own form ``define({"tag": "user-onboarding", "handler": onboard, "options": {"timeout": 300000}})``.
    Options: name, description, rollback_strategy, timeout, signals, queries, branch_overrides,
    record_input, record_scenarios, input_model, max_events, envs, product, on_message — each also in the
    seed's camelCase (`branchOverrides`, `recordInput`, ...). Keyword arguments win over `options`.
    """
    spec: dict[str, Any] = {}
    if isinstance(tag, Mapping):
        spec = dict(tag)
        tag = spec.pop("tag", None)
        handler = handler or spec.pop("handler", None)
        spec_options = spec.pop("options", None) or {}
        spec = {**spec_options, **spec}
    if not tag or not isinstance(tag, str):
        raise DefinitionError("a workflow needs a non-empty string tag")
    if handler is None or not callable(handler):
        raise DefinitionError(f"workflow {tag}: handler must be a function taking ctx")
    keywords = {
        "name": name,
        "description": description,
        "rollback_strategy": rollback_strategy,
        "timeout": timeout,
        "signals": signals,
        "queries": queries,
        "branch_overrides": branch_overrides,
        "record_input": record_input,
        "record_scenarios": record_scenarios,
        "input_model": input_model,
        "max_events": max_events,
        "envs": envs,
        "product": product,
        "on_message": on_message,
    }
    opts = _gather_options(tag, options or {}, spec, seed_names, keywords)
    strategy_text = snake_case(str(opts.get("rollback_strategy") or "reverse_all"))
    try:
        strategy = RollbackStrategy(strategy_text)
    except ValueError:
        known = ", ".join(s.value for s in RollbackStrategy)
        raise DefinitionError(
            f"workflow {tag}: unknown rollback_strategy {strategy_text!r} (use {known})"
        ) from None
    try:
        timeout_ms = parse_duration(opts.get("timeout"), what="timeout")
    except InvalidInput as exc:
        raise DefinitionError(f"workflow {tag}: {exc.message}") from None
    env_names, inactive = _envs(tag, opts.get("envs"))
    record_input = opts.get("record_input")
    on_message = opts.get("on_message")
    if on_message is not None:
        broker, sep, topic = (
            on_message.partition(":") if isinstance(on_message, str) else ("", "", "")
        )
        if not (sep and broker and topic):
            raise DefinitionError(
                f'workflow {tag}: on_message must be "broker:topic", got {on_message!r}'
            )
    source = inspect.getsourcefile(handler) if hasattr(handler, "__code__") else None
    line = handler.__code__.co_firstlineno if hasattr(handler, "__code__") else None
    definition = WorkflowDefinition(
        tag=tag,
        handler=handler,
        name=opts.get("name") or tag,
        description=opts.get("description") or "",
        rollback_strategy=strategy,
        timeout_ms=timeout_ms,
        signals=_normalise_signals(tag, opts.get("signals")),
        queries=_normalise_queries(tag, opts.get("queries")),
        branch_overrides=dict(opts.get("branch_overrides") or {}),
        record_input=dict(record_input) if record_input is not None else None,
        record_scenarios=[dict(s) for s in opts.get("record_scenarios") or []],
        input_model=opts.get("input_model"),
        max_events=opts.get("max_events"),
        envs=env_names,
        inactive_envs=inactive,
        product=opts.get("product"),
        on_message=on_message,
        source_file=source,
        source_line=line,
    )
    if _collector is not None:
        _collector.append(definition)
    return definition


def workflow(tag: str, **options: Any) -> Callable[[Callable[..., Any]], WorkflowDefinition]:
    """Decorator over `define`: ``@workflow("order-fulfillment", timeout="5m")``."""

    def wrap(handler: Callable[..., Any]) -> WorkflowDefinition:
        return define(tag=tag, handler=handler, **options)

    return wrap
