"""Commands that read runs: status, list, history, step, events."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from ductape_cli.cli.common import (
    JsonOption,
    RunId,
    command,
    engine,
    exit_code_for,
    print_json,
    use_rich,
)


def status(run_id: RunId, as_json: JsonOption = False) -> None:
    """Show a run: status, step tree, what it waits for, output or error.

    Example: ductape status wf_3f2a9c1d7b4e
    """
    info = engine().status(run_id)
    if as_json:
        print_json(info)
    else:
        from ductape_cli.render.views import console, result_panel

        console().print(result_panel(info, info["steps"]))
        if info.get("children"):
            typer.echo("children: " + ", ".join(f"{c['workflow_id']} ({c['status']})" for c in info["children"]))
        for key in ("parent_id", "replayed_from", "restarted_from", "resumed_from"):
            if info.get(key):
                typer.echo(f"{key}: {info[key]}")
        if info.get("metadata"):
            typer.echo("metadata: " + json.dumps(info["metadata"], sort_keys=True))
    raise typer.Exit(exit_code_for(info["status"]) if info["status"] != "running" else 0)


def list_runs(
    workflow: Annotated[str | None, typer.Option("--workflow", "-w", help="Only runs of this workflow tag.")] = None,
    status: Annotated[str | None, typer.Option("--status", "-s", help="Only runs in this status.")] = None,
    parent: Annotated[str | None, typer.Option("--parent", help="Only children of this run.")] = None,
    schedule: Annotated[str | None, typer.Option("--schedule", help="Only runs started by this schedule.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000, help="How many runs.")] = 20,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many (newest first).")] = 0,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first.

    Example: ductape list --workflow order-fulfillment --status failed --limit 10
    """
    from ductape_cli.errors import InvalidInput
    from ductape_cli.models import RunStatus

    if status is not None and status not in {s.value for s in RunStatus}:
        raise InvalidInput(f"unknown status {status!r} (use one of {', '.join(s.value for s in RunStatus)})")
    runs = engine().list_runs(tag=workflow, status=status, parent_id=parent, schedule_id=schedule, limit=limit, offset=offset)
    if as_json:
        from ductape_cli.engine.results import run_summary

        print_json([run_summary(r) for r in runs])
        return
    if not use_rich():
        for r in runs:
            meta = "\t" + json.dumps(r.metadata, sort_keys=True) if r.metadata else ""
            typer.echo(f"{r.id}\t{r.tag}\t{r.status}\t{r.env or '-'}{meta}")
        return
    from ductape_cli.render.views import console, runs_table

    console().print(runs_table(runs) if runs else "no runs")


def history(
    run_id: RunId,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events until the run ends.")] = False,
    type_: Annotated[list[str] | None, typer.Option("--type", "-t", help="Only events of this type (repeatable).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a run's event history as a timeline (or JSON, which `replay_history` can check).

    Example: ductape history wf_3f2a9c1d7b4e --type step_failed
    """
    eng = engine()
    events = eng.history(run_id, types=type_)
    if as_json and not follow:
        from ductape_cli.engine.history import export_run

        print_json(export_run(eng, run_id, events), compact=len(events) > 200)
        return
    _print_events(events, as_json)
    if not follow:
        return
    from ductape_cli.engine.history import entry_key

    seen = {entry_key(e) for e in events}
    while True:
        run = eng.get_run(run_id)
        new = [e for e in eng.history(run_id, types=type_) if entry_key(e) not in seen]
        if new:
            _print_events(new, as_json)
            seen.update(entry_key(e) for e in new)
        if run.status.terminal and not new:
            return
        time.sleep(0.25)


TERMINAL_ROWS = 500  # a rich table of 10,000 rows takes seconds to lay out


def _print_events(events: list[dict], as_json: bool) -> None:  # type: ignore[type-arg]
    import json
    import sys

    if as_json:
        sys.stdout.write("".join(json.dumps(event, default=str) + "\n" for event in events))
        return
    if not events:
        return
    if not use_rich():
        from datetime import UTC, datetime

        lines = []
        for event in events:
            data = dict(event["data"])
            step = data.pop("step", None) or "-"
            when = datetime.fromtimestamp(event["timestamp"] / 1000, tz=UTC).isoformat(timespec="milliseconds")
            details = json.dumps(data, default=str, ensure_ascii=False) if data else ""
            lines.append(f"{when.replace('+00:00', 'Z')}  {event['type']:<22} {step:<20} {details}".rstrip() + "\n")
        sys.stdout.write("".join(lines))  # one write: a long history is mostly printing
        return
    from ductape_cli.render.views import console, timeline

    shown = events[-TERMINAL_ROWS:]
    if len(shown) < len(events):
        typer.echo(f"(the last {len(shown)} of {len(events)} events; pipe or --json for all)")
    console().print(timeline(shown))


def step(
    run_id: RunId,
    tag: Annotated[str, typer.Argument(help="Step tag.")],
    as_json: JsonOption = False,
) -> None:
    """Show one step: status, input, output, error, attempts, duration, rollback status.

    Example: ductape step wf_3f2a9c1d7b4e process-payment
    """
    detail = engine().step_detail(run_id, tag)
    if as_json:
        print_json(detail)
        return
    from ductape_cli.render.views import console, step_detail

    console().print(step_detail(detail))


def events(
    run_id: RunId,
    type_: Annotated[str | None, typer.Option("--type", "-t", help="Only custom events of this type.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the custom events a run emitted with ctx.emit_event.

    Example: ductape events wf_3f2a9c1d7b4e --type step-started
    """
    rows = engine().history(run_id, types=["custom"])
    items = [
        {"id": e["id"], "timestamp": e["timestamp"], "type": e["data"].get("event"), "payload": e["data"].get("payload"), "step": e.get("step")}
        for e in rows
        if type_ is None or e["data"].get("event") == type_
    ]
    if as_json:
        print_json(items)
        return
    for item in items:
        typer.echo(f"{item['timestamp']}\t{item['type']}\t{item['payload']}")


def register(app: typer.Typer) -> None:
    command(app, status)
    command(app, list_runs, "list")
    command(app, history)
    command(app, step)
    command(app, events)
