"""Commands about definitions: define, show, workflows."""

from __future__ import annotations

from typing import Annotated

import typer

from ductape_cli.cli.common import JsonOption, Tag, command, engine, print_json


def define(
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 when a stored definition is missing, stale or invalid.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Compile the project's workflows into versioned definitions and show what changed.

    Example: ductape define --check

    Exit codes: 0 ok; 1 (--check) a definition is missing, out of date or does
    not compile; 2 a workflow module or workflow failed to compile (the others
    are still defined).
    """
    from ductape_cli.components.checks import validate_components
    from ductape_cli.definitions import define_all

    eng = engine()
    validate_components(eng.config, eng.config.default_env)
    report = define_all(eng, check=check)
    if as_json:
        print_json(report.to_dict())
    else:
        from ductape_cli.render.definitions import check_report, define_report
        from ductape_cli.render.views import console

        console().print(check_report(report) if check else define_report(report))
    for warning in report.warnings:
        typer.echo(f"ductape: warning: {warning}", err=True)
    for error in report.errors:
        typer.echo(f"ductape: {error}", err=True)
    raise typer.Exit(report.exit_code)


def show(
    tag: Tag,
    version: Annotated[str | None, typer.Option("--version", "-v", help="A stored version or a unique prefix (default: latest).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show one stored workflow definition: its steps, conditions, options and versions.

    Example: ductape show order-fulfillment --version 46351c2a
    """
    from ductape_cli.definitions import show_definition

    record = show_definition(engine(), tag, version)
    if as_json:
        print_json(record)
        return
    from ductape_cli.render.definitions import show_definition as render
    from ductape_cli.render.views import console

    console().print(render(record))


def workflows(as_json: JsonOption = False) -> None:
    """List defined workflows: tag, name, latest version, how many versions, when defined.

    Example: ductape workflows --json
    """
    from ductape_cli.definitions import list_workflows

    rows = list_workflows(engine())
    if as_json:
        print_json(rows)
        return
    from ductape_cli.render.definitions import workflows_table
    from ductape_cli.render.views import console

    console().print(workflows_table(rows))


def register(app: typer.Typer) -> None:
    command(app, define)
    command(app, show)
    command(app, workflows)
