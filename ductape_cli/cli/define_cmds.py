"""Commands about definitions: define, show, workflows."""

from __future__ import annotations

from typing import Annotated

import typer

from ductape_cli.cli.common import JsonOption, Tag, command, engine, output, print_json
from ductape_cli.cli.read_command import show_definition, show_workflows


def define(
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Write nothing; exit 1 when a stored definition is missing, stale or invalid.",
        ),
    ] = False,
    annotations: Annotated[
        bool | None,
        typer.Option(
            "--annotations/--no-annotations",
            show_default=False,
            help="GitHub Actions workflow commands for each problem (default: on when GITHUB_ACTIONS=true).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Compile the project's workflows into versioned definitions and show what changed.

    Example: ductape define --check

    Exit codes: 0 ok; 1 (--check) a definition is missing, out of date or does
    not compile; 2 a workflow module or workflow failed to compile (the others
    are still defined).
    """

    eng = engine()
    eng.check_components()
    report = eng.define(check=check)
    if as_json:
        print_json(report.to_dict())
    else:
        output("check" if check else "define", report, False)
    for warning in report.warnings:
        typer.echo(f"ductape: warning: {warning}", err=True)
    for error in report.errors:
        typer.echo(f"ductape: {error}", err=True)
    from ductape_cli.render import github

    if github.enabled(annotations):
        for line in github.define_annotations(report):
            typer.echo(line, err=True)
    raise typer.Exit(report.exit_code)


def show(
    tag: Tag,
    version: Annotated[
        str | None,
        typer.Option(
            "--version", "-v", help="A stored version or a unique prefix (default: latest)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show one stored workflow definition: its steps, conditions, options and versions.

    Example: ductape show order-fulfillment --version 46351c2a
    """
    raise typer.Exit(show_definition(tag, version=version, as_json=as_json))


def workflows(as_json: JsonOption = False) -> None:
    """List defined workflows: tag, name, latest version, how many versions, when defined.

    Example: ductape workflows --json
    """
    raise typer.Exit(show_workflows(as_json=as_json))


def register(app: typer.Typer) -> None:
    command(app, define)
    command(app, show)
    command(app, workflows)
