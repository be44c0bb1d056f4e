"""Commands for components: `topics list|tail` (the brokers' topics) and `components check`."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from ductape_cli.cli.common import JsonOption, command, engine, print_json, use_rich


def list_topics(as_json: JsonOption = False) -> None:
    """List the topics of every declared broker (and local topics holding messages), with their counts.

    Example: ductape topics list
    """
    from ductape_cli.engine import topics

    rows = topics.list_topics(engine())
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no topics yet (declare [brokers.NAME] topics; workflows publish with ctx.messaging.produce)")
        return
    _print_table(
        ("topic", "type", "messages", "detail"),
        [(f"{r['broker']}:{r['topic']}", r["type"], "-" if r["messages"] is None else str(r["messages"]), _detail(r)) for r in rows],
    )


def tail(
    topic: Annotated[str, typer.Argument(metavar="BROKER:TOPIC", help="The topic, e.g. order-events:order-created.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new messages until Ctrl-C.")] = False,
    start: Annotated[
        str | None,
        typer.Option("--from", "--from-offset", help="First position: local offset, Redis entry id, NATS sequence, RabbitMQ queue index."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Print a topic's messages without consuming them; --follow waits for new ones.

    Example: ductape topics tail order-events:order-created --from 10 --follow
    """
    from ductape_cli.engine import topics

    pages = topics.tail(engine(), topic, start, follow)
    if as_json and not follow:
        print_json([row for page in pages for row in page])
        return
    try:
        for page in pages:
            _print_messages(page, as_json)
    except KeyboardInterrupt:
        return


def check(
    env: Annotated[str | None, typer.Option("--env", "-e", help="Env whose overrides and ${VARS} to check (default: project default_env).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate the component tables of ductape.toml and the ${VARS} they use; list what is declared.

    Example: ductape components check --env prd
    """
    from ductape_cli.components.checks import components_report

    eng = engine()
    report = components_report(eng, eng.config.check_env(env or eng.config.default_env))
    rows, problems = report["components"], report["problems"]
    if as_json:
        print_json(report)
    else:
        if rows:
            _print_table(("table", "name", "detail"), [(r["table"], r["name"], r["detail"]) for r in rows])
        else:
            typer.echo("no components declared")
        for problem in problems:
            typer.echo(f"ductape: {problem}", err=True)
    if problems:
        raise typer.Exit(2)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _detail(row: dict[str, Any]) -> str:
    parts = [row["detail"]] if row.get("detail") else []
    if row.get("last_at"):
        parts.append(f"last {_when(row['last_at'])}")
    if row.get("outbox_pending"):
        parts.append(f"outbox: {row['outbox_pending']} waiting" + (f" ({row['outbox_error']})" if row.get("outbox_error") else ""))
    return "; ".join(parts)


def _print_messages(messages: list[dict[str, Any]], as_json: bool) -> None:
    import json

    for message in messages:
        if as_json:
            typer.echo(json.dumps(message, ensure_ascii=False, default=str))
        else:
            when = f"  {_when(message['created_at'])}" if message.get("created_at") else ""
            run = f"  {message['run_id']}" if message.get("run_id") else ""
            ident = f"  {message['message_id']}" if message.get("message_id") else ""
            body = json.dumps(message["message"], ensure_ascii=False, default=str)
            typer.echo(f"{message['position']:>6}{when}{run}{ident}  {body}")


def _print_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    if not use_rich():
        for row in rows:
            typer.echo("  ".join(row))
        return
    from rich.table import Table

    from ductape_cli.render.views import console

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console().print(table)


def register(app: typer.Typer) -> None:
    topics_app = typer.Typer(help="Topics of the declared brokers (local, Redis, RabbitMQ, NATS, MQTT).", no_args_is_help=True)
    components_app = typer.Typer(help="Components declared in ductape.toml ([apps], [databases], ...).", no_args_is_help=True)
    command(topics_app, list_topics, "list")
    command(topics_app, tail)
    command(components_app, check)
    app.add_typer(topics_app, name="topics")
    app.add_typer(components_app, name="components")
