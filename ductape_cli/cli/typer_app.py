"""The typer app: the root with `--version`, and the commands of the families asked for."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from ductape_cli.cli.app import COMMAND_MODULES, HELP, installed_version


def build(modules: tuple[str, ...] = COMMAND_MODULES) -> typer.Typer:
    """A ductape app with the commands of `modules`."""
    new = typer.Typer(
        name="ductape",
        help=HELP,
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    # A callback keeps a one-family app a group: `ductape run TAG`, never `ductape TAG`.
    new.callback()(_root)
    for name in modules:
        importlib.import_module(f"ductape_cli.cli.{name}").register(new)
    return new


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ductape {installed_version()}")
        raise typer.Exit(0)


def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="Print the installed version and exit.",
        ),
    ] = None,
) -> None:
    """Local-first durable workflows: define, run, signal, replay and inspect them."""
