"""The `ductape` command: a typer app whose commands live in one module per family.

One handler (`cli.basics.explain`) turns a `DuctapeError` into one line on
stderr and its exit code. `main` builds only the family of the command being
run (typer builds every registered command before dispatching, and importing
them all is start-up time a command does not need); `--help` on a terminal
and anything unknown get the whole app. A plain `ductape run TAG [options]`,
`status RUN_ID`, `history RUN_ID`, `list [options]`, one of the other reading
commands (`step`, `events`, `workflows`, `show`, `related`, `compare`,
`query`), `signal` or `cancel` builds no app at all (`cli/plain_argv.py`), nor
does `ductape --help` to a pipe (`cli/root_help.py`); this module imports no
typer, so those paths never pay for it.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from ductape_cli.errors import EXIT_USAGE, DuctapeError

HELP = "Local-first durable workflows: define, run, signal, replay and inspect them."

# command -> the module (family) that registers it; a test checks it against the full app
COMMAND_FAMILIES = {
    "init": "project_cmds",
    "define": "define_cmds",
    "show": "define_cmds",
    "workflows": "define_cmds",
    "run": "run_cmds",
    "resume": "run_cmds",
    "signal": "run_cmds",
    "hook": "run_cmds",
    "cancel": "run_cmds",
    "query": "run_cmds",
    "status": "inspect_cmds",
    "list": "inspect_cmds",
    "history": "inspect_cmds",
    "step": "inspect_cmds",
    "events": "inspect_cmds",
    "worker": "worker_cmds",
    "dev": "worker_cmds",
    "replay": "lineage_cmds",
    "restart": "lineage_cmds",
    "related": "lineage_cmds",
    "compare": "lineage_cmds",
    "dispatch": "schedule_cmds",
    "schedules": "schedule_cmds",
    "topics": "topic_cmds",
    "components": "topic_cmds",
    "wait": "ops_cmds",
    "export": "ops_cmds",
    "import": "ops_cmds",
    "prune": "ops_cmds",
    "store": "ops_cmds",
    "serve": "serve_cmds",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMAND_FAMILIES.values()))
# the reading commands whose bodies and option tables are in cli/read_command.py
READ_COMMANDS = ("step", "events", "workflows", "show", "related", "compare", "query")
# command -> (module, function) that runs its plain argv without typer, or returns None
PLAIN_COMMANDS = {
    "run": ("run_command", "fast_run"),
    "status": ("status_command", "fast_status"),
    "history": ("history_command", "fast_history"),
    "list": ("list_command", "fast_list"),
    "signal": ("signal_command", "fast_signal"),
    "cancel": ("signal_command", "fast_cancel"),
    **{name: ("read_command", f"fast_{name}") for name in READ_COMMANDS},
    "--help": ("root_help", "fast_help"),  # the committed text of typer's help, to a pipe
    "-h": ("root_help", "fast_help"),
}


def installed_version() -> str:
    """The installed distribution's version (package metadata), never a hard-coded string."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ductape")
    except PackageNotFoundError:
        return "unknown (not installed; pip install -e .)"


def __getattr__(name: str) -> Any:
    # `app` (every command) is built on first use: tests, docs, and `main` for --help.
    if name == "app":
        from ductape_cli.cli.typer_app import build

        full = build()
        globals()["app"] = full
        return full
    if name == "build":
        from ductape_cli.cli import typer_app

        return typer_app.build
    raise AttributeError(name)


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else None
    if command in PLAIN_COMMANDS:  # without typer when the argv is plain (cli/plain_argv.py)
        module, function = PLAIN_COMMANDS[command]
        fast = getattr(importlib.import_module(f"ductape_cli.cli.{module}"), function)
        code = fast(sys.argv[2:])
        if code is not None:
            sys.exit(code)
    from ductape_cli.cli.typer_app import build

    family = COMMAND_FAMILIES.get(command or "")
    target = build((family,)) if family else build()
    try:
        target(prog_name="ductape")
    except (
        DuctapeError
    ) as exc:  # raised outside a command (should not happen, but never a traceback)
        print(f"ductape: {exc.message}", file=sys.stderr)
        sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
