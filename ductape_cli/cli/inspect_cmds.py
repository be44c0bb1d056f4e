"""Commands that read runs: status, list, history, step, events."""

from __future__ import annotations

from typing import Annotated

import typer

from ductape_cli.cli.common import JsonOption, RunId, command
from ductape_cli.cli.history_command import show_history
from ductape_cli.cli.list_command import show_runs
from ductape_cli.cli.read_command import show_events, show_step
from ductape_cli.cli.status_command import show_status


def status(run_id: RunId, as_json: JsonOption = False) -> None:
    """Show a run: status, step tree, what it waits for, output or error.

    Example: ductape status wf_3f2a9c1d7b4e
    """
    raise typer.Exit(show_status(run_id, as_json=as_json))


def list_runs(
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", help="Only runs of this workflow tag.")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", "-s", help="Only runs in this status.")
    ] = None,
    parent: Annotated[
        str | None, typer.Option("--parent", help="Only children of this run.")
    ] = None,
    schedule: Annotated[
        str | None, typer.Option("--schedule", help="Only runs started by this schedule.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=10_000, help="How many runs.")
    ] = 20,
    offset: Annotated[
        int, typer.Option("--offset", min=0, help="Skip this many (newest first).")
    ] = 0,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first.

    Example: ductape list --workflow order-fulfillment --status failed --limit 10
    """
    raise typer.Exit(
        show_runs(
            workflow=workflow,
            status=status,
            parent=parent,
            schedule=schedule,
            limit=limit,
            offset=offset,
            as_json=as_json,
        )
    )


def history(
    run_id: RunId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events until the run ends.")
    ] = False,
    type_: Annotated[
        list[str] | None,
        typer.Option("--type", "-t", help="Only events of this type (repeatable)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a run's event history as a timeline (or JSON, which `replay_history` can check).

    Example: ductape history wf_3f2a9c1d7b4e --type step_failed
    """
    raise typer.Exit(show_history(run_id, follow=follow, types=type_, as_json=as_json))


def step(
    run_id: RunId,
    tag: Annotated[str, typer.Argument(help="Step tag.")],
    as_json: JsonOption = False,
) -> None:
    """Show one step: status, input, output, error, attempts, duration, rollback status.

    Example: ductape step wf_3f2a9c1d7b4e process-payment
    """
    raise typer.Exit(show_step(run_id, tag, as_json=as_json))


def events(
    run_id: RunId,
    type_: Annotated[
        str | None, typer.Option("--type", "-t", help="Only custom events of this type.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the custom events a run emitted with ctx.emit_event (JSON payloads, ISO times).

    Example: ductape events wf_3f2a9c1d7b4e --type step-started
    """
    raise typer.Exit(show_events(run_id, type_=type_, as_json=as_json))


def register(app: typer.Typer) -> None:
    command(app, status)
    command(app, list_runs, "list")
    command(app, history)
    command(app, step)
    command(app, events)
