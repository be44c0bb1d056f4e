"""The `ductape` command: a typer app whose commands live in one module per family.

One handler turns a `DuctapeError` into one line on stderr and its exit code.
"""

from __future__ import annotations

import sys

import typer

from ductape_cli.errors import EXIT_USAGE, DuctapeError

app = typer.Typer(
    name="ductape",
    help="Local-first durable workflows: define, run, signal, replay and inspect them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


COMMAND_MODULES = (
    "project_cmds", "define_cmds", "run_cmds", "inspect_cmds", "worker_cmds", "lineage_cmds", "schedule_cmds",
    "topic_cmds",
)


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"ductape_cli.cli.{name}").register(app)


_register()


def main() -> None:
    try:
        app()
    except DuctapeError as exc:  # raised outside a command (should not happen, but never a traceback)
        print(f"ductape: {exc.message}", file=sys.stderr)
        sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
