"""`ductape store migrate|info|copy`: the store as a whole (added to `store_app` by ops_cmds)."""

from __future__ import annotations

from typing import Annotated

import typer

from ductape_cli.cli.common import JsonOption, command, print_json

FromOption = Annotated[
    str, typer.Option("--from", help="Source store: a path, sqlite:///path or postgresql://...")
]
ToOption = Annotated[
    str, typer.Option("--to", help="Target store: a path, sqlite:///path or postgresql://...")
]


def _project_store() -> str:
    from ductape_cli.config import load_config

    return load_config().store_path


def migrate(as_json: JsonOption = False) -> None:
    """Apply the schema to the project's store (DUCTAPE_STORE or ductape.toml `store`); safe while others start.

    Example: DUCTAPE_STORE=postgresql://ductape@db.internal/ductape ductape store migrate
    """
    from ductape_cli.engine.store_admin import migrate as migrate_store

    report = migrate_store(_project_store())
    if as_json:
        print_json(report)
        return
    what = (
        f"applied {report['applied']} migration(s)" if report["applied"] else "already up to date"
    )
    typer.echo(
        f"{report['store']} ({report['backend']}): {what}; schema version {report['schema_version']}"
    )


def info(as_json: JsonOption = False) -> None:
    """Show the project's store: backend, schema version and what it holds.

    Example: ductape store info --json
    """
    from ductape_cli.engine.store_admin import info as store_info

    report = store_info(_project_store())
    if as_json:
        print_json(report)
        return
    lines = [
        f"store    {report['store']}",
        f"backend  {report['backend']}",
        f"schema   {report['schema_version']} of {report['schema_latest']}",
        "runs     "
        + (", ".join(f"{n} {s}" for s, n in report["runs_by_status"].items()) or "none"),
    ]
    lines += [f"{table:<15} {count}" for table, count in report["counts"].items()]
    typer.echo("\n".join(lines))


def copy(source: FromOption, target: ToOption, as_json: JsonOption = False) -> None:
    """Copy every run, definition, schedule and topic log from one store to another (SQLite ⇄ PostgreSQL).

    Runs the target already has are kept as they are, so an interrupted copy can be run again.
    Stop the workers on the source first.

    Example: ductape store copy --from .ductape/state.db --to postgresql://ductape@db.internal/ductape
    """
    from ductape_cli.config import load_config
    from ductape_cli.engine.store_admin import copy as copy_store
    from ductape_cli.engine.store_admin import location_of

    config = load_config()
    report = copy_store(location_of(source, config), location_of(target, config))
    if as_json:
        print_json(report)
        return
    skipped = f" ({report['skipped_runs']} already there)" if report["skipped_runs"] else ""
    typer.echo(
        f"copied {report['runs']} run(s){skipped}, {report['definitions']} definition version(s), "
        f"{report['schedules']} schedule(s), {report['topic_messages']} topic message(s) "
        f"from {report['from']} to {report['to']}"
    )


def add_to(store_app: typer.Typer) -> None:
    command(store_app, migrate)
    command(store_app, info)
    command(store_app, copy)
