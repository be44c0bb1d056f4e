"""What every typer command shares: options defined once, the guard, the engine closed with the command.

The typer-free part (exit codes, JSON arguments and output) lives in `cli/basics.py`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ductape_cli.cli.basics import (
    exit_code_for,
    explain,
    open_engine,
    output,
    parse_json_arg,
    print_json,
    project_config,
    use_rich,
)
from ductape_cli.errors import DuctapeError, InvalidInput

__all__ = [
    "JsonOption",
    "LogFormat",
    "LogLevel",
    "RunId",
    "Tag",
    "command",
    "complete_run_ids",
    "complete_tags",
    "engine",
    "exit_code_for",
    "guarded",
    "output",
    "parse_assignment",
    "parse_json_arg",
    "print_json",
    "project_config",
    "setup_logging",
    "use_rich",
]

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine


def complete_tags(incomplete: str) -> list[str]:
    """Shell completion: the workflow tags defined in the store (never creates one, never fails)."""
    try:
        eng = engine()
        return [w["tag"] for w in eng.workflows() if w["tag"].startswith(incomplete)]
    except Exception:  # noqa: BLE001 - a completion must never print a traceback into the shell
        return []


def complete_run_ids(incomplete: str) -> list[tuple[str, str]]:
    """Shell completion: the 50 most recent run ids, with their workflow and status as help."""
    try:
        eng = engine()
        return [
            (r.id, f"{r.tag} {r.status}")
            for r in eng.list_runs(limit=50)
            if r.id.startswith(incomplete)
        ]
    except Exception:  # noqa: BLE001 - a completion must never print a traceback into the shell
        return []


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON for machines (stable keys, no colour).")
]
RunId = Annotated[
    str,
    typer.Argument(
        metavar="RUN_ID",
        help="Run id, or a unique prefix or suffix of it (at least 6 characters).",
        autocompletion=complete_run_ids,
    ),
]
LogLevel = Annotated[
    str | None,
    typer.Option(
        "--log-level",
        metavar="LEVEL",
        help="debug, info, warning, error or critical [env: DUCTAPE_LOG_LEVEL].",
    ),
]
LogFormat = Annotated[
    str,
    typer.Option(
        "--log-format",
        metavar="FORMAT",
        help="Log lines as text, or json (one object a line, with run_id and step).",
    ),
]
Tag = Annotated[
    str,
    typer.Argument(
        metavar="TAG", help="Workflow tag, e.g. user-onboarding.", autocompletion=complete_tags
    ),
]


def setup_logging(level: str | None, fmt: str, *, default: str = "warning") -> None:
    """For the long-running commands: `ductape.*` log records to stderr (see ductape_cli/logs.py)."""
    from ductape_cli.logs import configure

    configure(level, fmt, default=default)


F = TypeVar("F", bound=Callable[..., Any])


def guarded(fn: F) -> F:
    """A command's `DuctapeError` (or Ctrl-C) becomes one line on stderr and its exit code (`basics.explain`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (DuctapeError, KeyboardInterrupt) as exc:
            raise typer.Exit(explain(exc)) from None

    return wrapper  # type: ignore[return-value]


def command(app: typer.Typer, fn: Callable[..., Any], name: str | None = None) -> None:
    app.command(name)(guarded(fn))


def engine() -> Engine:
    eng = open_engine()
    try:
        from typer._click.globals import get_current_context  # typer 0.27+ carries its own click
    except ImportError:  # pragma: no cover - older typer on click
        from click import get_current_context  # type: ignore[no-redef]
    context = get_current_context(silent=True)
    if context is not None:
        context.call_on_close(eng.close)  # its store and event loop go when the command ends
    return eng


def parse_assignment(text: str, what: str) -> tuple[str, Any]:
    """`key=value` where value is JSON when it parses, else the literal string."""
    from ductape_cli.jsonin import NotJson, parse_json

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise InvalidInput(f"{what} expects KEY=VALUE, got {text!r}")
    try:
        return key.strip(), parse_json(value, f"{what} {key.strip()}")
    except NotJson:  # bad bytes, NaN or absurd nesting stay errors, not strings
        return key.strip(), value
