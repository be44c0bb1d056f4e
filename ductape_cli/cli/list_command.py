"""`ductape list` without typer: the command's body, and its option table for `cli/plain_argv.py`.

The typer command (`cli/inspect_cmds.list_runs`) calls the same `show_runs`;
a test checks the limits here against its `min`/`max`.
"""

from __future__ import annotations

from collections.abc import Callable

from ductape_cli.cli.basics import open_engine, output
from ductape_cli.cli.plain_argv import Options, Parsed, call_plain, parse_plain

LIST_OPTIONS: Options = {
    "--workflow": ("workflow", None),
    "-w": ("workflow", None),
    "--status": ("status", None),
    "-s": ("status", None),
    "--parent": ("parent", None),
    "--schedule": ("schedule", None),
    "--limit": ("limit", None),
    "-n": ("limit", None),
    "--offset": ("offset", None),
    "--json": ("as_json", True),
}
LIMIT_RANGE = (1, 10_000)
OFFSET_RANGE = (0, None)


def within(low: int, high: int | None) -> Callable[[str], int]:
    """Text to an int in [low, high], as click's IntRange takes it (ValueError otherwise)."""

    def to_int(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            raise ValueError(f"{value} is not in [{low}, {high}]")
        return value

    return to_int


def parse_list_args(args: list[str]) -> Parsed | None:
    convert = {"limit": within(*LIMIT_RANGE), "offset": within(*OFFSET_RANGE)}
    return parse_plain(args, LIST_OPTIONS, arguments=0, convert=convert)


def fast_list(args: list[str]) -> int | None:
    """`ductape list` from its argv tokens: the exit code, or None when typer must parse them."""
    return call_plain(parse_list_args(args), show_runs)


def show_runs(
    *,
    workflow: str | None = None,
    status: str | None = None,
    parent: str | None = None,
    schedule: str | None = None,
    limit: int = 20,
    offset: int = 0,
    as_json: bool = False,
) -> int:
    """Print runs, newest first; returns 0."""
    eng = open_engine()
    try:
        runs = eng.list_runs(
            tag=workflow,
            status=status,
            parent_id=parent,
            schedule_id=schedule,
            limit=limit,
            offset=offset,
        )
        output("runs", runs, as_json)
        return 0
    finally:
        eng.close()
