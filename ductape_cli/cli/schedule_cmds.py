"""`ductape dispatch` and `ductape schedules ...`: runs started later or on a cron."""

from __future__ import annotations

from typing import Annotated

import typer

from ductape_cli.cli.common import JsonOption, Tag, command, engine, output, parse_json_arg

JobId = Annotated[str, typer.Argument(metavar="JOB_ID", help="Schedule id (job_...).")]


def dispatch(
    tag: Tag,
    input: Annotated[
        str | None, typer.Option("--input", "-i", help="Input as JSON, @file.json, or -.")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Start once at this ISO 8601 time, e.g. 2026-12-01T09:00."),
    ] = None,
    in_: Annotated[
        str | None, typer.Option("--in", help="Start once after this long, e.g. 30s, 1h.")
    ] = None,
    cron: Annotated[
        str | None, typer.Option("--cron", help="Start on this cron schedule, e.g. '0 0 * * *'.")
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option("--timezone", "--tz", help="IANA zone for --cron and a naive --at."),
    ] = None,
    env: Annotated[
        str | None, typer.Option("--env", "-e", help="Env for the runs it starts.")
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option("--retries", min=0, help="Start a fresh run this many times when one fails."),
    ] = None,
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="Timeout of each run it starts.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Schedule a workflow: once (--at, --in) or on a cron; a worker fires it.

    Example: ductape dispatch sync-inventory --cron "0 * * * *" --timezone America/New_York --retries 3
    """
    payload = parse_json_arg(input, "--input", default={})
    view = engine().dispatch(
        tag,
        payload,
        at=at,
        after=in_,
        cron=cron,
        timezone=timezone,
        env=env,
        retries=retries,
        timeout=timeout,
    )
    output("schedule", view, as_json)


schedules_app = typer.Typer(
    help="Inspect and control schedules made with `ductape dispatch`.", no_args_is_help=True
)


def list_schedules(as_json: JsonOption = False) -> None:
    """List schedules with their next fire times.

    Example: ductape schedules list
    """
    output("schedules", engine().list_schedules(), as_json)


def show(job_id: JobId, as_json: JsonOption = False) -> None:
    """Show one schedule, its next fire times and the runs it started.

    Example: ductape schedules show job_4f2a1c9e0b
    """
    output("schedule", engine().get_schedule(job_id), as_json)


def pause(job_id: JobId, as_json: JsonOption = False) -> None:
    """Pause a schedule (it stops firing until resumed).

    Example: ductape schedules pause job_4f2a1c9e0b
    """
    output("schedule", engine().pause_schedule(job_id), as_json)


def resume(job_id: JobId, as_json: JsonOption = False) -> None:
    """Resume a paused schedule from the next fire time after now.

    Example: ductape schedules resume job_4f2a1c9e0b
    """
    output("schedule", engine().resume_schedule(job_id), as_json)


def delete(job_id: JobId) -> None:
    """Delete a schedule (runs it started are kept).

    Example: ductape schedules delete job_4f2a1c9e0b
    """
    engine().delete_schedule(job_id)
    typer.echo(f"deleted {job_id}")


def register(app: typer.Typer) -> None:
    command(app, dispatch)
    command(schedules_app, list_schedules, "list")
    for fn in (show, pause, resume, delete):
        command(schedules_app, fn)
    app.add_typer(schedules_app, name="schedules")
