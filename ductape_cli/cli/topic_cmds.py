"""Commands for components: `topics list|tail` (messages produced by workflows) and `components check`."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from ductape_cli.cli.common import JsonOption, command, engine, print_json, use_rich
from ductape_cli.errors import InvalidInput

POLL_SECONDS = 0.5



def list_topics(as_json: JsonOption = False) -> None:
    """List topics that hold messages, with their count and last write.

    Example: ductape topics list
    """
    eng = engine()
    topics = eng.store.list_topics()
    if as_json:
        print_json(topics)
        return
    if not topics:
        typer.echo("no messages yet (workflows publish with ctx.messaging.produce)")
        return
    _print_table(
        ("topic", "messages", "last message"),
        [(f"{t['broker']}:{t['topic']}", str(t["messages"]), _when(t["last_at"])) for t in topics],
    )


def tail(
    topic: Annotated[str, typer.Argument(metavar="BROKER:TOPIC", help="The topic, e.g. order-events:order-created.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new messages until Ctrl-C.")] = False,
    from_offset: Annotated[int, typer.Option("--from-offset", min=0, help="First offset to show.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Print a topic's messages from an offset; --follow waits for new ones.

    Example: ductape topics tail order-events:order-created --from-offset 10 --follow
    """
    broker, sep, name = topic.partition(":")
    if not sep or not broker or not name:
        raise InvalidInput(f"topic must be BROKER:TOPIC, got {topic!r}")
    eng = engine()
    messages = eng.store.read_messages(broker, name, from_offset)
    if not messages and not _declared(eng.config.raw, broker, name) and not follow:
        raise InvalidInput(f"no topic {topic!r}: it is not declared in [brokers.{broker}] topics and holds no messages")
    if as_json and not follow:
        print_json(messages)
        return
    _print_messages(messages, as_json)
    if not follow:
        return
    offset = messages[-1]["offset"] + 1 if messages else from_offset
    try:
        while True:
            time.sleep(POLL_SECONDS)
            fresh = eng.store.read_messages(broker, name, offset)
            if fresh:
                _print_messages(fresh, as_json)
                offset = fresh[-1]["offset"] + 1
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


def _declared(raw: dict[str, Any], broker: str, name: str) -> bool:
    spec = (raw.get("brokers") or {}).get(broker)
    return isinstance(spec, dict) and name in (spec.get("topics") or [])


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _print_messages(messages: list[dict[str, Any]], as_json: bool) -> None:
    import json

    for message in messages:
        if as_json:
            typer.echo(json.dumps(message, ensure_ascii=False, default=str))
        else:
            run = f" {message['run_id']}" if message.get("run_id") else ""
            body = json.dumps(message["message"], ensure_ascii=False, default=str)
            typer.echo(f"{message['offset']:>6}  {_when(message['created_at'])}{run}  {body}")


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
    topics_app = typer.Typer(help="Message topics written by ctx.messaging.produce.", no_args_is_help=True)
    components_app = typer.Typer(help="Components declared in ductape.toml ([apps], [databases], ...).", no_args_is_help=True)
    command(topics_app, list_topics, "list")
    command(topics_app, tail)
    command(components_app, check)
    app.add_typer(topics_app, name="topics")
    app.add_typer(components_app, name="components")
