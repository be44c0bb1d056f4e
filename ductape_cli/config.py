"""`ductape.toml`: find it, read it, check the project tables, and say where a mistake is.

Parsed with the standard library's tomllib, through a cache of the parsed
document (`toml_cache`: every command reads the config). Component tables
(`[apps]`, `[databases]`, ...) are kept raw here and validated by
`ductape_cli.components.config` when first used.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ductape_cli.errors import ConfigError
from ductape_cli.toml_cache import parse_toml

CONFIG_NAME = "ductape.toml"
_PROJECT_KEYS = {"name", "namespace", "workflows", "store", "default_env", "durability"}
# The tables that declare components (`ductape_cli/components/`), in the order they are checked.
COMPONENT_TABLES = (
    "apps",
    "databases",
    "notifications",
    "storage",
    "brokers",
    "quotas",
    "fallbacks",
    "graphs",
)
_TOP_TABLES = {
    "project",
    "envs",
    *COMPONENT_TABLES,
    "worker",
    "dev",
    "retention",
    "serve",
    "triggers",
}


@dataclass
class EnvConfig:
    name: str
    active: bool = True


@dataclass
class ProjectConfig:
    root: Path
    path: Path | None
    name: str = "my-product"
    workflows: str = "workflows"
    store: str = ".ductape/state.db"
    default_env: str = "dev"
    durability: str = "normal"
    namespace: str = ""  # explicit [project] namespace; empty means the project name
    lease_ttl: float = 30.0  # [worker] lease: how long a claim holds a run without renewal
    # [worker] active_per_host: None = the host's cores, 0 = no limit (engine/standby.py)
    active_per_host: int | None = None
    # [worker] join_when_idle: a standing-by worker helps while a whole core idles
    join_when_idle: bool = True
    envs: dict[str, EnvConfig] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def store_namespace(self) -> str:
        """Which runs in a shared store are this project's: `[project] namespace`, else its name."""
        return self.namespace or self.name

    @property
    def workflows_dir(self) -> Path:
        return (self.root / self.workflows).resolve()

    @property
    def store_path(self) -> str:
        override = os.environ.get("DUCTAPE_STORE")
        target = _interpolate(
            override or self.store, "DUCTAPE_STORE" if override else f"{self.source} store"
        )
        if target.startswith("sqlite://"):
            target = (
                target[len("sqlite://") :] or ":memory:"
            )  # sqlite:///abs/path or sqlite://rel/path
        if target == ":memory:" or "://" in target:
            return target
        path = Path(target)
        return str(path if path.is_absolute() else (Path.cwd() if override else self.root) / path)

    def check_env(self, env: str) -> str:
        """The env name to run in; refuses unknown and inactive envs."""
        if not self.envs:
            return env
        if env not in self.envs:
            known = ", ".join(sorted(self.envs))
            raise ConfigError(f"unknown env {env!r}; {self.source} declares: {known}")
        if not self.envs[env].active:
            raise ConfigError(
                f"env {env!r} is inactive in {self.source} ([envs.{env}] active = false)"
            )
        return env

    @property
    def source(self) -> str:
        return str(self.path) if self.path else CONFIG_NAME


def find_project_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above `start` holding a ductape.toml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    return None


def _interpolate(value: str, where: str) -> str:
    """``${VAR}`` in a store location, from the environment (a URL's password stays out of the file)."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where}: ${{{name}}} is not set in the environment")
        return os.environ[name]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", fill, value)


def load_config(start: Path | None = None) -> ProjectConfig:
    """Load the project around `start` (default: cwd, or DUCTAPE_PROJECT).

    Without a ductape.toml the defaults apply with the start folder as root, so
    status/list/history work anywhere a store is.
    """
    env_root = os.environ.get("DUCTAPE_PROJECT")
    start = start or (Path(env_root) if env_root else None)
    root = find_project_root(start)
    if root is None:
        return ProjectConfig(root=(start or Path.cwd()).resolve(), path=None)
    path = root / CONFIG_NAME
    text = path.read_text(encoding="utf-8")
    try:
        doc = parse_toml(text, root)
    except ValueError as exc:  # tomllib.TOMLDecodeError
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_config(doc, text, root, path)


def locate(text: str, table: str, key: str | None = None) -> int | None:
    """1-based line of `[table]` (or of `key` inside it) in the TOML text, for error messages."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\s*" + re.escape(table) + r"\s*\]\s*(#.*)?$")
    for number, line in enumerate(lines, 1):
        if header.match(line):
            if key is None:
                return number
            for offset, inner in enumerate(lines[number:], number + 1):
                if inner.lstrip().startswith("["):
                    break
                if re.match(r"^\s*" + re.escape(key) + r"\s*=", inner):
                    return offset
            return number
    return None


def config_error(
    path: Path | str, text: str, table: str, key: str | None, message: str
) -> ConfigError:
    line = locate(text, table, key)
    where = f"{path}:{line}" if line else str(path)
    return ConfigError(f"{where}: [{table}] {message}")


def parse_config(doc: dict[str, Any], text: str, root: Path, path: Path) -> ProjectConfig:
    config = ProjectConfig(root=root, path=path, raw=doc, text=text)
    for name in doc:
        if name not in _TOP_TABLES:
            line = locate(text, name)
            where = f"{path}:{line}" if line else str(path)
            raise ConfigError(
                f"{where}: unknown table [{name}] (known: {', '.join(sorted(_TOP_TABLES))})"
            )
    project = doc.get("project", {})
    if not isinstance(project, dict):
        raise config_error(path, text, "project", None, "must be a table")
    for key, value in project.items():
        if key not in _PROJECT_KEYS:
            raise config_error(
                path,
                text,
                "project",
                key,
                f"unknown key {key!r} (known: {', '.join(sorted(_PROJECT_KEYS))})",
            )
        if not isinstance(value, str):
            raise config_error(
                path, text, "project", key, f"{key} must be a string, got {type(value).__name__}"
            )
        setattr(config, key, value)
    if config.durability not in ("normal", "full"):
        raise config_error(
            path, text, "project", "durability", 'durability must be "normal" or "full"'
        )
    _parse_worker(config, doc.get("worker", {}), text, path)
    envs = doc.get("envs", {})
    if not isinstance(envs, dict):
        raise config_error(path, text, "envs", None, "must be a table of envs")
    for name, body in envs.items():
        if not isinstance(body, dict):
            raise config_error(path, text, f"envs.{name}", None, "must be a table")
        for key, value in body.items():
            if key != "active":
                raise config_error(
                    path, text, f"envs.{name}", key, f"unknown key {key!r} (known: active)"
                )
            if not isinstance(value, bool):
                raise config_error(path, text, f"envs.{name}", key, "active must be true or false")
        config.envs[name] = EnvConfig(name=name, active=body.get("active", True))
    if config.envs and config.default_env not in config.envs:
        raise config_error(
            path,
            text,
            "project",
            "default_env",
            f"default_env {config.default_env!r} is not in [envs]",
        )
    return config


_WORKER_KEYS = ("active_per_host", "join_when_idle", "lease")


def _parse_worker(config: ProjectConfig, worker: Any, text: str, path: Path) -> None:
    """`[worker]`: `lease` (a duration of at least 3s, renewed every third of it), and how
    many workers of one store take runs at once on a host (`engine/standby.py`)."""
    if not isinstance(worker, dict):
        raise config_error(path, text, "worker", None, "must be a table")
    for key in worker:
        if key not in _WORKER_KEYS:
            raise config_error(
                path, text, "worker", key, f"unknown key {key!r} (known: {', '.join(_WORKER_KEYS)})"
            )
    active = worker.get("active_per_host")
    if active is not None:
        if isinstance(active, bool) or not isinstance(active, int) or active < 0:
            raise config_error(
                path,
                text,
                "worker",
                "active_per_host",
                "active_per_host must be a whole number, 0 for no limit",
            )
        config.active_per_host = active
    join = worker.get("join_when_idle")
    if join is not None:
        if not isinstance(join, bool):
            raise config_error(
                path, text, "worker", "join_when_idle", "join_when_idle must be true or false"
            )
        config.join_when_idle = join
    if "lease" not in worker:
        return
    from ductape_cli.durations import parse_duration
    from ductape_cli.errors import DuctapeError

    try:
        ms = parse_duration(worker["lease"], what="lease")
    except DuctapeError as exc:
        raise config_error(path, text, "worker", "lease", exc.message) from None
    if ms is None or ms < 3000:
        raise config_error(path, text, "worker", "lease", "lease must be at least 3s")
    config.lease_ttl = ms / 1000
