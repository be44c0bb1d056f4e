"""Commands for pipelines and operators: wait, export, import, prune, store backup|vacuum."""

from __future__ import annotations

from typing import Annotated

import typer

from ductape_cli.cli.ci_options import (
    AnnotationsOption,
    JunitOption,
    check_junit_path,
    report_for_ci,
)
from ductape_cli.cli.common import JsonOption, RunId, command, engine, print_json
from ductape_cli.cli.run_cmds import show_result


def wait(
    run_id: RunId,
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="Give up after this long (10m, 1h): exit 5.")
    ] = None,
    junit: JunitOption = None,
    annotations: AnnotationsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Block until a run ends, then exit with its status (for pipelines that start with --detach).

    Example: ductape wait wf_3f2a9c1d7b4e --timeout 10m

    Exit codes: 0 completed, 1 failed, 3 rolled back, 4 cancelled, 5 timed out still running, 2 bad input.
    """
    from ductape_cli.engine.ci import wait_for_end

    check_junit_path(junit)
    eng = engine()
    result = wait_for_end(eng, run_id, timeout)
    report_for_ci(eng, result, junit, annotations)
    show_result(result, as_json)


def export(run_id: RunId) -> None:
    """Write a run, its journal, events, children and definition versions as JSON to stdout.

    Example: ductape export wf_3f2a9c1d7b4e > run.json

    Secrets stay redacted: the store never holds them in clear.
    """
    from ductape_cli.engine.transfer import export_bundle

    print_json(export_bundle(engine(), run_id), compact=True)


def import_(
    path: Annotated[
        str,
        typer.Argument(
            metavar="FILE", help="An export (ductape export ID > run.json), or - for stdin."
        ),
    ],
    rename: Annotated[
        bool,
        typer.Option(
            "--rename", help="Give runs whose id is taken here a new id instead of refusing."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Load an exported run (with its family) into this project's store; status, history, compare and replay work on it.

    Example: ductape import run.json

    Ids are kept; an id that is taken refuses the import (exit 2, nothing written) unless --rename.
    """
    from ductape_cli.engine.transfer import import_bundle, read_bundle

    data = read_bundle(path)
    report = import_bundle(engine(), data, rename=rename)
    if as_json:
        print_json(report)
        return
    from ductape_cli.render.upkeep import import_lines

    typer.echo("\n".join(import_lines(report)))


def prune(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Runs that ended longer ago than this: 30d, 12h (default: [retention] older_than).",
        ),
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="Only runs that ended with this status (repeatable)."),
    ] = None,
    workflow: Annotated[
        list[str] | None,
        typer.Option("--workflow", "-w", help="Only runs of this workflow tag (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be removed; remove nothing.")
    ] = False,
    batch: Annotated[
        int | None,
        typer.Option(
            "--batch",
            min=1,
            max=100_000,
            help="Runs deleted per transaction (default: [retention] batch, or 500).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Delete ended runs with their journals, events and signals, in small batches.

    Example: ductape prune --older-than 30d --status completed

    Never removes a run that has not ended, a parent whose child still runs, or a
    child whose parent still runs. With no --older-than, the [retention] table of ductape.toml applies.
    """
    from ductape_cli.engine.upkeep import policy_for
    from ductape_cli.engine.upkeep import prune as prune_runs

    eng = engine()
    report = prune_runs(
        eng, policy_for(eng.config, older_than, status, workflow, batch), dry_run=dry_run
    )
    if as_json:
        print_json(report)
        return
    from ductape_cli.render.upkeep import prune_lines

    typer.echo("\n".join(prune_lines(report)))


store_app = typer.Typer(
    help="Look after the store: backup, vacuum, migrate, info, copy.", no_args_is_help=True
)


def backup(
    path: Annotated[
        str, typer.Argument(metavar="PATH", help="The new backup file (never overwritten).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Copy the store to PATH with SQLite's online backup API: consistent while workers write.

    Example: ductape store backup backups/state-2026-11-30.db

    On PostgreSQL use pg_dump.
    """
    from ductape_cli.engine.upkeep import backup as backup_store

    report = backup_store(engine(), path)
    if as_json:
        print_json(report)
        return
    from ductape_cli.render.upkeep import size

    typer.echo(f"backed up {report['store']} to {report['backup']} ({size(report['bytes'])})")


def vacuum(as_json: JsonOption = False) -> None:
    """Rebuild the store file to give the space of pruned runs back to the disk.

    Example: ductape prune --older-than 30d && ductape store vacuum
    """
    from ductape_cli.engine.upkeep import vacuum as vacuum_store

    report = vacuum_store(engine())
    if as_json:
        print_json(report)
        return
    from ductape_cli.render.upkeep import size

    typer.echo(
        f"vacuumed {report['store']}: {size(report['bytes_before'])} → {size(report['bytes_after'])}"
    )


def register(app: typer.Typer) -> None:
    command(app, wait)
    command(app, export)
    command(app, import_, name="import")
    command(app, prune)
    command(store_app, backup)
    command(store_app, vacuum)
    from ductape_cli.cli.store_cmds import add_to

    add_to(store_app)
    app.add_typer(store_app, name="store")
