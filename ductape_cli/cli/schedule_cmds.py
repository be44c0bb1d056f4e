"""`ductape dispatch` and `ductape schedules ...`: runs started later or on a cron."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ductape_cli.cli.common import JsonOption, Tag, command, engine, parse_json_arg, print_json

JobId = Annotated[str, typer.Argument(metavar="JOB_ID", help="Schedule id (job_...).")]


def _show(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(view)
        return
    typer.echo(f"job {view['job_id']}  {view['tag']}  {view['kind']}{' ' + view['cron'] if view.get('cron') else ''}"
               f"{' (' + view['timezone'] + ')' if view.get('timezone') else ''}{'  paused' if view.get('paused') else ''}")  # fmt: skip
    for when in view["next_fire_times"]:
        typer.echo(f"  next: {when}")
    if view.get("missed"):
        typer.echo(f"  skipped while no worker ran: {', '.join(view['missed'])}")
    if view.get("last_run_id"):
        typer.echo(f"  last run: {view['last_run_id']}")


def dispatch(
    tag: Tag,
    input: Annotated[str | None, typer.Option("--input", "-i", help="Input as JSON, @file.json, or -.")] = None,
    at: Annotated[str | None, typer.Option("--at", help="Start once at this ISO 8601 time, e.g. 2026-12-01T09:00.")] = None,
    in_: Annotated[str | None, typer.Option("--in", help="Start once after this long, e.g. 30s, 1h.")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="Start on this cron schedule, e.g. '0 0 * * *'.")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", "--tz", help="IANA zone for --cron and a naive --at.")] = None,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Env for the runs it starts.")] = None,
    retries: Annotated[int | None, typer.Option("--retries", min=0, help="Start a fresh run this many times when one fails.")] = None,
    timeout: Annotated[str | None, typer.Option("--timeout", help="Timeout of each run it starts.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Schedule a workflow: once (--at, --in) or on a cron; a worker fires it.

    Example: ductape dispatch sync-inventory --cron "0 * * * *" --timezone America/New_York --retries 3
    """
    from ductape_cli.engine import schedules

    payload = parse_json_arg(input, "--input", default={})
    view = schedules.create(engine(), tag, payload, at=at, in_=in_, cron=cron, timezone=timezone, env=env, retries=retries, timeout=timeout)
    _show(view, as_json)


schedules_app = typer.Typer(help="Inspect and control schedules made with `ductape dispatch`.", no_args_is_help=True)


def list_schedules(as_json: JsonOption = False) -> None:
    """List schedules with their next fire times.

    Example: ductape schedules list
    """
    from ductape_cli.engine import schedules

    eng = engine()
    views = [schedules.describe(eng, s) for s in (eng.store.list_schedules() if eng.has_store() else [])]
    if as_json:
        print_json(views)
        return
    for view in views:
        _show(view, False)
    if not views:
        typer.echo("no schedules")


def show(job_id: JobId, as_json: JsonOption = False) -> None:
    """Show one schedule, its next fire times and the runs it started.

    Example: ductape schedules show job_4f2a1c9e0b
    """
    from ductape_cli.engine import schedules

    eng = engine()
    view = schedules.describe(eng, schedules.get(eng, job_id), upcoming=5)
    view["runs"] = [{"workflow_id": r.id, "status": str(r.status)} for r in eng.list_runs(schedule_id=job_id, limit=20)]
    _show(view, as_json)
    if not as_json:
        for run in view["runs"]:
            typer.echo(f"  run {run['workflow_id']}  {run['status']}")


def pause(job_id: JobId, as_json: JsonOption = False) -> None:
    """Pause a schedule (it stops firing until resumed).

    Example: ductape schedules pause job_4f2a1c9e0b
    """
    from ductape_cli.engine import schedules

    _show(schedules.set_paused(engine(), job_id, True), as_json)


def resume(job_id: JobId, as_json: JsonOption = False) -> None:
    """Resume a paused schedule from the next fire time after now.

    Example: ductape schedules resume job_4f2a1c9e0b
    """
    from ductape_cli.engine import schedules

    _show(schedules.set_paused(engine(), job_id, False), as_json)


def delete(job_id: JobId) -> None:
    """Delete a schedule (runs it started are kept).

    Example: ductape schedules delete job_4f2a1c9e0b
    """
    from ductape_cli.engine import schedules

    schedules.delete(engine(), job_id)
    typer.echo(f"deleted {job_id}")


def register(app: typer.Typer) -> None:
    command(app, dispatch)
    command(schedules_app, list_schedules, "list")
    for fn in (show, pause, resume, delete):
        command(schedules_app, fn)
    app.add_typer(schedules_app, name="schedules")
