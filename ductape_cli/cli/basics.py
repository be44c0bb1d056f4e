"""What commands share that needs no typer: exit codes, errors as one line, the engine, JSON in and out.

The `run` fast path (`cli/run_command.py`) imports only this and the engine, so
it stays typer-free; `cli/common.py` re-exports it for the typer commands.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

_EXIT_BY_STATUS = {
    "completed": EXIT_OK,
    "failed": EXIT_FAILED,
    "rolled_back": EXIT_ROLLED_BACK,
    "cancelled": EXIT_CANCELLED,
    "running": EXIT_RUNNING,
    "pending": EXIT_RUNNING,
}
EXIT_INTERRUPTED = 130


def exit_code_for(status: str) -> int:
    return _EXIT_BY_STATUS.get(status, EXIT_FAILED)


def say(message: str) -> None:
    """One line on stderr (what `typer.echo(..., err=True)` does, without typer)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def explain(exc: DuctapeError | KeyboardInterrupt) -> int:
    """The one place a user-facing error becomes one line on stderr; returns its exit code."""
    if isinstance(exc, KeyboardInterrupt):
        say("ductape: interrupted")
        return EXIT_INTERRUPTED
    say(f"ductape: {exc.message}")
    return exc.exit_code


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


def open_engine() -> Engine:
    """The project's engine; the caller closes it."""
    from ductape_cli.engine.engine import Engine

    eng = Engine(project_config())
    eng.on_resolved = lambda given, run_id: say(f"ductape: {given!r} is run {run_id}")
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


def progress(tag: str, as_json: bool) -> Any:
    """The live view of a run being driven here: none for --json, Rich on a terminal, else plain lines."""
    if as_json:
        return None
    if use_rich():
        from ductape_cli.render.live import LiveProgress

        return LiveProgress(tag)
    from ductape_cli.render.live import PlainProgress

    return PlainProgress()


def with_progress(tag: str, as_json: bool, action: Callable[[Any], Any]) -> Any:
    observer = progress(tag, as_json)
    try:
        return action(observer)
    finally:
        if observer is not None:
            observer.close()


def notices(eng: Engine, as_json: bool) -> None:
    if not as_json:
        for notice in eng.notices:
            say(f"ductape: {notice}")
