"""`topics list|tail` and `components check` as text: a table on a terminal, plain lines to a pipe."""

from __future__ import annotations

import time
from typing import Any

import typer

from ductape_cli.render.output import terminal


def topics_table(rows: list[dict[str, Any]]) -> None:
    _print_table(
        ("topic", "type", "messages", "detail"),
        [
            (
                f"{r['broker']}:{r['topic']}",
                r["type"],
                "-" if r["messages"] is None else str(r["messages"]),
                _detail(r),
            )
            for r in rows
        ],
    )


def components_table(rows: list[dict[str, Any]]) -> None:
    _print_table(("table", "name", "detail"), [(r["table"], r["name"], r["detail"]) for r in rows])


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _detail(row: dict[str, Any]) -> str:
    parts = [row["detail"]] if row.get("detail") else []
    if row.get("last_at"):
        parts.append(f"last {_when(row['last_at'])}")
    if row.get("outbox_pending"):
        parts.append(
            f"outbox: {row['outbox_pending']} waiting"
            + (f" ({row['outbox_error']})" if row.get("outbox_error") else "")
        )
    return "; ".join(parts)


def print_messages(messages: list[dict[str, Any]], as_json: bool) -> None:
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
    if not terminal():
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
