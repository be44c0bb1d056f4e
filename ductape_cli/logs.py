"""Logging: every record under the `ductape` logger carries the run and step it was made in.

Modules log with ``logging.getLogger("ductape.<area>")``. An execution marks
itself current (a context variable, so it follows the run into step threads),
and `RunFilter` stamps ``run_id`` and ``step`` on each record from it — one
assignment per execution, nothing per step. The long-running commands
(`worker`, `serve`, `dev`) call `configure` once with `--log-level` /
`DUCTAPE_LOG_LEVEL` and `--log-format text|json`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import time
from typing import Any, Protocol, TextIO

from ductape_cli.errors import InvalidInput

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("text", "json")
ENV_LEVEL = "DUCTAPE_LOG_LEVEL"
ROOT = "ductape"


class Running(Protocol):
    """What the filter reads from the execution in progress."""

    @property
    def run_id(self) -> str: ...

    @property
    def current_step(self) -> str | None: ...


CURRENT: contextvars.ContextVar[Running | None] = contextvars.ContextVar(
    "ductape_execution", default=None
)


def current_step() -> str | None:
    """The step whose function is running here (set by the step runner), else the execution's."""
    from ductape_cli.engine.steps import IN_STEP

    step = IN_STEP.get()
    if step is not None:
        return step
    running = CURRENT.get()
    return running.current_step if running is not None else None


class RunFilter(logging.Filter):
    """Stamps `run_id` and `step` (None outside a run) so formatters can always use them."""

    def filter(self, record: logging.LogRecord) -> bool:
        running = CURRENT.get()
        record.run_id = running.run_id if running is not None else None
        record.step = current_step() if running is not None else None
        return True


class TextFormatter(logging.Formatter):
    """`12:00:01 WARNING ductape.worker [run 01H… step charge] message`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(where)s%(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        run_id, step = getattr(record, "run_id", None), getattr(record, "step", None)
        record.where = (
            "" if run_id is None else f"[run {run_id}" + (f" step {step}] " if step else "] ")
        )
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, run_id, step, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "run_id": getattr(record, "run_id", None),
            "step": getattr(record, "step", None),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def resolve_level(option: str | None, default: str) -> int:
    """`--log-level`, else DUCTAPE_LOG_LEVEL, else the command's default; bad values are InvalidInput."""
    name = option or os.environ.get(ENV_LEVEL) or default
    if name.lower() not in LEVELS:
        source = "--log-level" if option else ENV_LEVEL
        raise InvalidInput(f"{source} must be one of {', '.join(LEVELS)}, got {name!r}")
    return int(getattr(logging, name.upper()))


def configure(
    level: str | None, fmt: str, *, default: str = "warning", stream: TextIO | None = None
) -> logging.Handler:
    """Send `ductape.*` records at `level` and above to stderr, as text or JSON lines.

    Replaces a handler an earlier call installed (`dev` reloads in one process)."""
    if fmt not in FORMATS:
        raise InvalidInput(f"--log-format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    resolved = resolve_level(level, default)
    root = logging.getLogger(ROOT)
    for old in [h for h in root.handlers if getattr(h, "ductape_configured", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.ductape_configured = True  # type: ignore[attr-defined]
    handler.addFilter(RunFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(resolved)
    return handler
