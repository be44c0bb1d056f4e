"""The component tables of `ductape.toml`: their shape, env overrides, `${VAR}` and secrets.

Checked with pydantic the first time a workflow uses a component (or when
`ductape components check` asks), never on plain runs or `--help`. Every
mistake is reported as ``file:line: [table] message``. `${NAME}` (or
`${NAME:-default}`) is filled from the environment only when the component
that holds it is used, so an unset token for one app does not break the rest.
"""

from __future__ import annotations

import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ductape_cli.components.checks import TABLES
from ductape_cli.components.interpolate import (
    Filled,
    MissingVariable,
    config_secrets,
    fill,
    secret_fields_of,
    url_password,
)
from ductape_cli.config import ProjectConfig, config_error, locate
from ductape_cli.durations import parse_duration, write_duration
from ductape_cli.errors import ConfigError, InvalidInput

UNFILLED_MS = 1  # a duration still holding a ${VAR}: checked for real once filled in (ComponentConfig.resolve)


def _ms(value: Any) -> Any:
    if isinstance(value, str) and "${" in value:
        return UNFILLED_MS
    try:
        return parse_duration(value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


Ms = Annotated[int, BeforeValidator(_ms)]
Secret = Annotated[
    list[str], Field(default_factory=list, description="fields redacted in anything recorded")
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _http_url(value: str | None, what: str) -> str | None:
    if value is not None and "${" not in value and not value.startswith(("http://", "https://")):
        raise ValueError(f"{what} must start with http:// or https://, got {value!r}")
    return value


# -- apps (ctx.action) ---------------------------------------------------------


class AppEvent(_Model):
    method: Annotated[
        Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"], BeforeValidator(_upper)
    ] = "GET"
    path: str = "/"
    headers: dict[str, str] = {}
    query: dict[str, str | int | float | bool] = {}
    timeout: Ms | None = None
    retries: int | None = Field(None, ge=0, le=20)
    secret: Secret
    description: str | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if "${" not in value and not value.startswith("/"):
            raise ValueError(f"path must start with '/', got {value!r}")
        return value


class AppEnv(_Model):
    base_url: str | None = None
    headers: dict[str, str] = {}
    variables: dict[str, Any] = {}

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return _http_url(value, "base_url")


class App(_Model):
    base_url: str | None = None
    headers: dict[str, str] = {}
    variables: dict[str, Any] = {}
    constants: dict[str, Any] = {}
    timeout: Ms = 30_000
    retries: int = Field(0, ge=0, le=20)
    retry_delay: Ms = 100
    secret: Secret
    description: str | None = None
    envs: dict[str, AppEnv] = {}
    events: dict[str, AppEvent] = {}

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return _http_url(value, "base_url")


# -- databases ------------------------------------------------------------------


def _db_url(value: str) -> str:
    if "${" not in value and not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ValueError(f"url must be sqlite:///path.db or postgresql://..., got {value!r}")
    return value


class DatabaseEvent(_Model):
    sql: str
    secret: Secret
    description: str | None = None


class DatabaseEnv(_Model):
    url: str

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _db_url(value)


class Database(_Model):
    url: str
    ddl: str | list[str] | None = Field(None, alias="schema")
    secret: Secret
    description: str | None = None
    envs: dict[str, DatabaseEnv] = {}
    events: dict[str, DatabaseEvent] = {}

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _db_url(value)


# -- notifications -----------------------------------------------------------------


class Smtp(_Model):
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    ssl: bool = False
    sender: str = Field(alias="from")
    username: str | None = None
    password: str | None = None
    timeout: Ms = 10_000


class Webhook(_Model):
    webhook: str
    headers: dict[str, str] = {}
    timeout: Ms = 10_000

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str) -> str | None:
        return _http_url(value, "webhook")


class NotificationEvent(_Model):
    subject: str | None = None  # email
    body: str | None = None  # email and push
    html: str | None = None  # email, optional HTML part
    message: str | None = None  # sms
    title: str | None = None  # push
    secret: Secret
    description: str | None = None


class Notification(_Model):
    outbox: str | None = None
    smtp: Smtp | None = None
    sms: Webhook | None = None
    push: Webhook | None = None
    retries: int = Field(0, ge=0, le=20)
    secret: Secret
    description: str | None = None
    events: dict[str, NotificationEvent] = {}

    @model_validator(mode="after")
    def _transport(self) -> Notification:
        if not (self.outbox or self.smtp or self.sms or self.push):
            raise ValueError("needs an outbox folder or a transport (smtp, sms, push)")
        return self


# -- storage, brokers, quotas, fallbacks ---------------------------------------------


class StorageEvent(_Model):
    prefix: str = ""
    description: str | None = None


class Storage(_Model):
    path: str
    max_size: int | None = Field(None, ge=1, description="largest upload in bytes")
    journal_limit: int = Field(
        65_536, ge=0, description="larger downloads are journaled as a reference"
    )
    description: str | None = None
    events: dict[str, StorageEvent] = {}


BROKER_TYPES = ("local", "redis", "rabbitmq", "nats", "mqtt")
_BROKER_SCHEMES = {
    "redis": ("redis://", "rediss://", "unix://"),
    "rabbitmq": ("amqp://", "amqps://"),
    "nats": ("nats://", "tls://"),
    "mqtt": ("mqtt://", "mqtts://"),
}
# Options that only mean something for some broker types (the rest apply to all).
_BROKER_OPTIONS = {
    "maxlen": ("redis",),
    "stream": ("nats",),
    "ack_wait": ("redis", "nats"),
    "qos": ("mqtt",),
    "session_expiry": ("mqtt",),
    "url": ("redis", "rabbitmq", "nats", "mqtt"),
    "group": ("redis", "rabbitmq", "nats", "mqtt"),
}


class Broker(_Model):
    type: Literal["local", "redis", "rabbitmq", "nats", "mqtt"] = "local"
    url: str | None = None
    topics: list[str] = Field(min_length=1)
    outbox: bool = False
    group: str | None = Field(
        None, min_length=1, description="consumer group / durable / client id prefix for triggers"
    )
    maxlen: int | None = Field(None, ge=1, description="redis: approximate MAXLEN of each stream")
    stream: str | None = Field(None, min_length=1, description="nats: JetStream stream name")
    ack_wait: Ms | None = Field(
        None, description="redis, nats: redeliver a message unacknowledged this long"
    )
    qos: Literal[1, 2] = 1
    session_expiry: Ms = 86_400_000
    secret: Secret
    description: str | None = None

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("topics must be unique")
        for topic in value:
            if not topic or ":" in topic or any(c.isspace() or c in "*>#+" for c in topic):
                raise ValueError(
                    f"invalid topic name {topic!r} (no ':', spaces or wildcards * > # +)"
                )
        return value

    @model_validator(mode="after")
    def _per_type(self) -> Broker:
        for option, kinds in _BROKER_OPTIONS.items():
            if option in self.model_fields_set and self.type not in kinds:
                raise ValueError(
                    f"{option} does not apply to type = {self.type!r} (it is for {', '.join(kinds)})"
                )
        if (
            self.stream is not None
            and "${" not in self.stream
            and not re.fullmatch(r"[A-Za-z0-9_-]+", self.stream)
        ):
            raise ValueError(f"stream must be letters, digits, '_' or '-', got {self.stream!r}")
        if self.type == "local":
            return self
        if not self.url:
            raise ValueError(
                f'type = {self.type!r} needs url = "{_BROKER_SCHEMES[self.type][0]}..."'
            )
        if "${" not in self.url and not self.url.startswith(_BROKER_SCHEMES[self.type]):
            raise ValueError(
                f"url for type = {self.type!r} must start with {' or '.join(_BROKER_SCHEMES[self.type])}, got {_hide_password(self.url)!r}"
            )
        if self.ack_wait is not None and self.ack_wait != UNFILLED_MS and self.ack_wait < 1000:
            raise ValueError("ack_wait must be at least 1s")
        return self


class Quota(_Model):
    limit: int = Field(ge=1)
    per: Ms
    description: str | None = None

    @field_validator("per")
    @classmethod
    def _per(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("per must be longer than 0 ms")
        return value


class Provider(_Model):
    app: str
    event: str
    timeout: Ms | None = None
    retries: int | None = Field(None, ge=0, le=20)


class Fallback(_Model):
    providers: list[Provider] = Field(min_length=1)
    description: str | None = None


# -- graphs ----------------------------------------------------------------------------


class GraphAction(_Model):
    kind: Literal["neighbors", "shortest_path", "nodes", "sql"]
    depth: int = Field(1, ge=1, le=50)
    max_depth: int = Field(6, ge=1, le=50)
    label: str | None = None
    type: str | None = None
    direction: Literal["out", "in", "both"] = "both"
    params: dict[str, str] = Field(
        default_factory=dict, description="built-in param name -> caller's name"
    )
    sql: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _sql(self) -> GraphAction:
        if self.kind == "sql" and not self.sql:
            raise ValueError('kind = "sql" needs sql = "SELECT ..."')
        if self.kind != "sql" and self.sql:
            raise ValueError(f'sql is only for kind = "sql", not {self.kind!r}')
        return self


class Graph(_Model):
    path: str
    description: str | None = None
    actions: dict[str, GraphAction] = {}


class Components(_Model):
    apps: dict[str, App] = {}
    databases: dict[str, Database] = {}
    notifications: dict[str, Notification] = {}
    storage: dict[str, Storage] = {}
    brokers: dict[str, Broker] = {}
    quotas: dict[str, Quota] = {}
    fallbacks: dict[str, Fallback] = {}
    graphs: dict[str, Graph] = {}


# -- resolved views (env applied, ${VAR} filled) ------------------------------------------


@dataclass
class ResolvedApp:
    name: str
    env: str | None
    base_url: str
    headers: dict[str, str]
    variables: dict[str, Any]
    constants: dict[str, Any]
    model: App
    secret_values: list[str] = field(default_factory=list)


@dataclass
class ResolvedDatabase:
    name: str
    url: str
    model: Database
    secret_values: list[str] = field(default_factory=list)


@dataclass
class ResolvedNotification:
    name: str
    model: Notification
    smtp: Smtp | None
    sms: Webhook | None
    push: Webhook | None
    outbox: Path | None
    secret_values: list[str] = field(default_factory=list)


@dataclass
class ResolvedBroker:
    name: str
    url: str | None
    model: Broker
    secret_values: list[str] = field(default_factory=list)

    @property
    def type(self) -> str:
        return self.model.type


class ComponentConfig:
    """The validated component tables of one project, and lookups that name the file on error."""

    def __init__(self, project: ProjectConfig, model: Components) -> None:
        self.project = project
        self.model = model
        self.source = project.source
        self.text = project.text

    def error(self, table: str, key: str | None, message: str) -> ConfigError:
        return config_error(self.source, self.text, table, key, message)

    def path(self, value: str) -> Path:
        """A path from the config: absolute as given, relative to the project root."""
        path = Path(os.path.expanduser(value))
        return path if path.is_absolute() else self.project.root / path

    def _pick(self, table: str, name: str) -> Any:
        declared = getattr(self.model, table)
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            line = locate(self.text, table)
            where = f"{self.source}:{line}" if line else self.source
            raise ConfigError(f"{where}: no [{table}.{name}] declared ({table}: {known})")
        return declared[name]

    def event(self, table: str, name: str, component: Any, event: str, attr: str = "events") -> Any:
        events = getattr(component, attr)
        if event not in events:
            known = ", ".join(sorted(events)) or "none"
            raise self.error(
                f"{table}.{name}", None, f"no {attr[:-1]} {event!r} (declared: {known})"
            )
        return events[event]

    def resolve(self, table: str, name: str, env: str | None) -> tuple[Any, list[str]]:
        """One component as a run uses it: `env` overrides applied, every `${VAR}` filled, checked again.

        Returns the filled model and the values that are secrets (see `interpolate`).
        """
        self._pick(table, name)
        raw = self.project.raw[table][name]
        base = {k: v for k, v in raw.items() if k != "envs"}
        filled = self._filled(base, f"{table}.{name}")
        override = (raw.get("envs") or {}).get(env) if env else None
        if isinstance(override, dict):
            extra = self._filled(override, f"{table}.{name}.envs.{env}")
            for key, value in extra.value.items():
                if isinstance(value, dict) and isinstance(filled.value.get(key), dict):
                    filled.value[key] = {**filled.value[key], **value}
                else:
                    filled.value[key] = value
            filled.used.update(extra.used)
        try:
            model = Components.model_validate({table: {name: filled.value}})
        except ValidationError as exc:
            raise _config_error(self.project, {table: {name: filled.value}}, exc) from None
        secrets = config_secrets(filled, secret_fields_of(raw))
        resolved = getattr(model, table)[name]
        if table == "fallbacks":
            _check_providers(self, name, resolved)
        return resolved, secrets

    def _filled(self, value: dict[str, Any], table: str) -> Filled:
        try:
            return fill(value)
        except MissingVariable as exc:
            # Name the deepest [table] written as a header, and the key under it.
            where, rest = table, list(exc.path)
            for depth in range(len(rest) - 1, 0, -1):
                prefix = rest[:depth]
                if all(isinstance(k, str) for k in prefix) and locate(
                    self.text, ".".join([table, *map(str, prefix)])
                ):
                    where, rest = ".".join([table, *map(str, prefix)]), rest[depth:]
                    break
            key = rest[0] if rest and isinstance(rest[0], str) else None
            raise self.error(
                where,
                key,
                f"{_dotted(rest) or 'value'}: environment variable {exc.name} is not set",
            ) from None

    def app(self, name: str, env: str | None) -> ResolvedApp:
        app, secrets = self.resolve("apps", name, env)
        table = f"apps.{name}"
        if not app.base_url:
            raise self.error(table, None, f"no base_url (set it here or in [{table}.envs.{env}])")
        return ResolvedApp(
            name,
            env,
            app.base_url.rstrip("/"),
            dict(app.headers),
            dict(app.variables),
            dict(app.constants),
            app,
            secrets,
        )

    def database(self, name: str, env: str | None) -> ResolvedDatabase:
        db, secrets = self.resolve("databases", name, env)
        return ResolvedDatabase(name, db.url, db, secrets)

    def notification(self, name: str) -> ResolvedNotification:
        note, secrets = self.resolve("notifications", name, None)
        outbox = self.path(note.outbox) if note.outbox else None
        return ResolvedNotification(name, note, note.smtp, note.sms, note.push, outbox, secrets)

    def storage(self, name: str) -> Storage:
        return self.resolve("storage", name, None)[0]

    def broker(self, name: str) -> Broker:
        return self.resolve("brokers", name, None)[0]

    def resolved_broker(self, name: str) -> ResolvedBroker:
        """A broker with its `url` filled from the environment (and checked again once filled)."""
        broker, secrets = self.resolve("brokers", name, None)  # every ${VAR} filled, the url's too
        url = broker.url
        if (
            url is not None
            and broker.type != "local"
            and not url.startswith(_BROKER_SCHEMES[broker.type])
        ):
            schemes = " or ".join(_BROKER_SCHEMES[broker.type])
            raise self.error(
                f"brokers.{name}",
                "url",
                f"url for type = {broker.type!r} must start with {schemes}, got {_hide_password(url)!r}",
            )
        password = url_password(url) if url else None
        return ResolvedBroker(name, url, broker, [*secrets, *([password] if password else [])])

    def quota(self, name: str) -> Quota:
        return self.resolve("quotas", name, None)[0]

    def fallback(self, name: str) -> Fallback:
        return self.resolve("fallbacks", name, None)[0]

    def graph(self, name: str) -> Graph:
        return self.resolve("graphs", name, None)[0]

    def check(self, env: str | None) -> list[str]:
        """Every problem a run in `env` would meet resolving a component, one line each."""
        problems = []
        for table in TABLES:
            for name in getattr(self.model, table):
                try:
                    if table == "apps":
                        self.app(name, env)
                    elif table == "brokers":
                        self.resolved_broker(name)  # the url's scheme is checked once filled
                    else:
                        self.resolve(table, name, env)
                except ConfigError as exc:
                    problems.append(exc.message)
        return problems

    def summary(self) -> list[dict[str, Any]]:
        """One row per declared component, for `ductape components check`."""
        rows: list[dict[str, Any]] = []
        for table in TABLES:
            for name, item in getattr(self.model, table).items():
                detail = ""
                if isinstance(item, App):
                    detail = (
                        f"{item.base_url or '(per env)'}; events: {', '.join(item.events) or '-'}"
                    )
                elif isinstance(item, Database):
                    detail = f"{_hide_password(item.url)}; events: {', '.join(item.events) or '-'}"
                elif isinstance(item, Notification):
                    channels = [c for c in ("smtp", "sms", "push") if getattr(item, c)] + (
                        ["outbox"] if item.outbox else []
                    )
                    detail = f"{', '.join(channels)}; events: {', '.join(item.events) or '-'}"
                elif isinstance(item, (Storage, Graph)):
                    detail = item.path
                elif isinstance(item, Broker):
                    where = f"{item.type} {_hide_password(item.url)}" if item.url else item.type
                    outbox = "; outbox" if item.outbox else ""
                    detail = f"{where}; topics: " + ", ".join(item.topics) + outbox
                elif isinstance(item, Quota):
                    detail = f"{item.limit} per {write_duration(item.per)}"
                elif isinstance(item, Fallback):
                    detail = " -> ".join(f"{p.app}.{p.event}" for p in item.providers)
                rows.append({"table": table, "name": name, "detail": detail})
        return rows


def _hide_password(url: str) -> str:
    password = url_password(url)
    return url.replace(f":{password}@", ":***@") if password else url


# -- loading and error messages ----------------------------------------------------------------

_cache: dict[tuple[str, str], ComponentConfig] = {}


def load_components(project: ProjectConfig) -> ComponentConfig:
    """Validate the component tables of `project` (once per file content)."""
    key = (project.source, project.text)
    cached = _cache.get(key)
    if cached is not None and cached.project.root == project.root:
        return cached
    raw = {table: project.raw.get(table, {}) for table in TABLES}
    try:
        model = Components.model_validate(raw)
    except ValidationError as exc:
        raise _config_error(project, raw, exc) from None
    components = ComponentConfig(project, model)
    _cross_check(components)
    _cache[key] = components
    return components


def _cross_check(components: ComponentConfig) -> None:
    model, envs = components.model, components.project.envs
    for name, fallback in model.fallbacks.items():
        _check_providers(components, name, fallback)
    if envs:
        for table in ("apps", "databases"):
            for name, item in getattr(model, table).items():
                for env in item.envs:
                    if env not in envs:
                        raise components.error(
                            f"{table}.{name}.envs.{env}",
                            None,
                            f"env {env!r} is not declared in [envs] ({', '.join(envs)})",
                        )


def _check_providers(components: ComponentConfig, name: str, fallback: Fallback) -> None:
    """Each provider names a declared app and event (a `${VAR}` name is checked once filled)."""
    apps = components.model.apps
    for provider in fallback.providers:
        if "${" in provider.app + provider.event:
            continue
        app = apps.get(provider.app)
        if app is None:
            raise components.error(
                f"fallbacks.{name}",
                "providers",
                f"provider app {provider.app!r} is not declared in [apps]",
            )
        if provider.event not in app.events:
            raise components.error(
                f"fallbacks.{name}",
                "providers",
                f"provider event {provider.event!r} is not declared in [apps.{provider.app}.events]",
            )


def _config_error(project: ProjectConfig, raw: dict[str, Any], exc: ValidationError) -> ConfigError:
    error = exc.errors()[0]
    kind = error["type"]
    shown: list[str | int] = []
    node: Any = raw
    loc = list(error["loc"])
    for index, part in enumerate(loc):
        if _holds(node, part):
            node = node[part]
            shown.append(part)
        elif kind == "missing" and index == len(loc) - 1:
            shown.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and _alias_of(part) in node:
            node = node[_alias_of(part)]
            shown.append(_alias_of(part))
    # The deepest [header] that exists in the file is the table we name.
    table_len = 1
    for length in range(1, len(shown) + 1):
        prefix = shown[:length]
        if not all(isinstance(p, str) for p in prefix):
            break
        if locate(project.text, ".".join(prefix)) is not None:  # type: ignore[arg-type]
            table_len = length
    if table_len == len(shown) and kind in ("missing", "extra_forbidden"):
        table_len = max(1, len(shown) - 1)
    table = ".".join(str(p) for p in shown[:table_len])
    rest = shown[table_len:]
    key = rest[0] if rest and isinstance(rest[0], str) else None
    if kind == "extra_forbidden":
        known = _known_keys(shown[:-1])
        field = _dotted(rest[:-1])
        message = f"unknown key {str(shown[-1])!r}" + (
            f" (known: {', '.join(known)})" if known else ""
        )
        message = f"{field}: {message}" if field else message
    elif kind == "missing":
        field = _dotted(rest[:-1])
        message = f"missing required key {str(shown[-1])!r}"
        message = f"{field}: {message}" if field else message
    else:
        text = str(error["msg"]).removeprefix("Value error, ")
        if kind in ("dict_type", "model_type", "model_attributes_type"):
            text = "must be a table"
        field = _dotted(rest)
        message = f"{field}: {text}" if field else text
    return config_error(
        project.source, project.text, table, key if isinstance(key, str) else None, message
    )


def _holds(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and part < len(node)


def _alias_of(name: str) -> str:
    return {"sender": "from", "ddl": "schema"}.get(name, name)


def _dotted(parts: list[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _known_keys(path: list[str | int]) -> list[str]:
    """The keys allowed at `path` (table names and keys as written in TOML)."""
    current: Any = Components
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            found = None
            for name, info in current.model_fields.items():
                if part in (name, info.alias):
                    found = info.annotation
            if found is None:
                return []
            current = found
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        elif typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(info.alias or name for name, info in current.model_fields.items())
    return []


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X; `Annotated[X, ...]` -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = next(
                (
                    a
                    for a in args
                    if typing.get_origin(a) in (dict, list)
                    or isinstance(a, type)
                    and issubclass(a, BaseModel)
                ),
                args[0],
            )
        else:
            return annotation
