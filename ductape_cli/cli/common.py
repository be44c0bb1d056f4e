"""What every command shares: options defined once, the engine, argument parsing, exit codes."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ductape_cli.errors import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_ROLLED_BACK,
    EXIT_RUNNING,
    DuctapeError,
    InvalidInput,
)

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


_EXIT_BY_STATUS = {
    "completed": EXIT_OK,
    "failed": EXIT_FAILED,
    "rolled_back": EXIT_ROLLED_BACK,
    "cancelled": EXIT_CANCELLED,
    "running": EXIT_RUNNING,
    "pending": EXIT_RUNNING,
}


F = TypeVar("F", bound=Callable[..., Any])


def guarded(fn: F) -> F:
    """The one place a `DuctapeError` becomes one line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DuctapeError as exc:
            typer.echo(f"ductape: {exc.message}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("ductape: interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def command(app: typer.Typer, fn: Callable[..., Any], name: str | None = None) -> None:
    app.command(name)(guarded(fn))


def exit_code_for(status: str) -> int:
    return _EXIT_BY_STATUS.get(status, EXIT_FAILED)


def project_config() -> Any:
    """The project around the cwd (or DUCTAPE_PROJECT); outside one, a one-line error and nothing created."""
    from ductape_cli.config import load_config
    from ductape_cli.errors import ConfigError

    config = load_config()
    if (
        config.path is None
        and not os.environ.get("DUCTAPE_PROJECT")
        and not os.environ.get("DUCTAPE_STORE")
    ):
        raise ConfigError(
            f"not in a ductape project: no ductape.toml in {config.root} or any folder above it "
            "(run `ductape init`, cd into a project, or set DUCTAPE_PROJECT)"
        )
    return config


def engine() -> Engine:
    from ductape_cli.engine.engine import Engine

    eng = Engine(project_config())
    eng.on_resolved = lambda given, run_id: typer.echo(
        f"ductape: {given!r} is run {run_id}", err=True
    )
    try:
        from typer._click.globals import get_current_context  # typer 0.27+ carries its own click
    except ImportError:  # pragma: no cover - older typer on click
        from click import get_current_context  # type: ignore[no-redef]
    context = get_current_context(silent=True)
    if context is not None:
        context.call_on_close(eng.close)  # its store and event loop go when the command ends
    return eng


def parse_json_arg(text: str | None, what: str = "--input", *, default: Any = None) -> Any:
    """JSON given inline, as @file.json, or as - for stdin (strict: see `ductape_cli.jsonin`)."""
    from ductape_cli.jsonin import parse_json

    if text is None:
        return default
    if text == "-":
        return parse_json(sys.stdin.buffer.read(), f"{what} (stdin)")
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InvalidInput(f"{what}: file {path} not found") from None
        except OSError as exc:
            raise InvalidInput(f"{what}: cannot read {path}: {exc.strerror}") from None
        return parse_json(data, str(path))
    return parse_json(text, what)


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


def _jsonable(value: Any) -> Any:
    """Typed results (and anything else with `to_dict`) as their JSON object; the rest as text."""
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else str(value)


def print_json(value: Any, *, compact: bool = False) -> None:
    """JSON on stdout; `compact` for large payloads (indenting falls back to the slow pure-Python encoder)."""
    if compact:
        sys.stdout.write(
            json.dumps(value, separators=(",", ":"), default=_jsonable, ensure_ascii=False) + "\n"
        )
    else:
        sys.stdout.write(json.dumps(value, indent=2, default=_jsonable, ensure_ascii=False) + "\n")


def use_rich() -> bool:
    from ductape_cli.render.output import terminal

    return terminal()


def output(view: str, data: Any, as_json: bool) -> None:
    """Print `data`: JSON with --json, else the named view (Rich on a terminal, plain lines to a pipe)."""
    if as_json:
        from ductape_cli.render.output import json_value

        print_json(json_value(view, data))
        return
    from ductape_cli.render.output import show as render

    render(view, data)
