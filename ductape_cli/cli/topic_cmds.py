"""Commands for components: `topics list|tail` (the brokers' topics) and `components check`."""

from __future__ import annotations

from typing import Annotated

import typer

from ductape_cli.cli.common import JsonOption, command, engine, print_json


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
        typer.echo(
            "no topics yet (declare [brokers.NAME] topics; workflows publish with ctx.messaging.produce)"
        )
        return
    from ductape_cli.render.topics import topics_table

    topics_table(rows)


def tail(
    topic: Annotated[
        str,
        typer.Argument(metavar="BROKER:TOPIC", help="The topic, e.g. order-events:order-created."),
    ],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new messages until Ctrl-C.")
    ] = False,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            "--from-offset",
            help="First position: local offset, Redis entry id, NATS sequence, RabbitMQ queue index.",
        ),
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
        from ductape_cli.render.topics import print_messages

        for page in pages:
            print_messages(page, as_json)
    except KeyboardInterrupt:
        return


def check(
    env: Annotated[
        str | None,
        typer.Option(
            "--env",
            "-e",
            help="Env whose overrides and ${VARS} to check (default: project default_env).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate the component tables of ductape.toml and the ${VARS} they use; list what is declared.

    Example: ductape components check --env prd
    """
    report = engine().components_report(env)
    rows, problems = report["components"], report["problems"]
    if as_json:
        print_json(report)
    else:
        if rows:
            from ductape_cli.render.topics import components_table

            components_table(rows)
        else:
            typer.echo("no components declared")
        for problem in problems:
            typer.echo(f"ductape: {problem}", err=True)
    if problems:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    topics_app = typer.Typer(
        help="Topics of the declared brokers (local, Redis, RabbitMQ, NATS, MQTT).",
        no_args_is_help=True,
    )
    components_app = typer.Typer(
        help="Components declared in ductape.toml ([apps], [databases], ...).", no_args_is_help=True
    )
    command(topics_app, list_topics, "list")
    command(topics_app, tail)
    command(components_app, check)
    app.add_typer(topics_app, name="topics")
    app.add_typer(components_app, name="components")
