"""`ductape history` without typer: the command's body, and its option table for `cli/plain_argv.py`.

`--type` (repeatable) is not in the table, so a history filtered by type goes
through typer. The typer command (`cli/inspect_cmds.history`) calls the same
`show_history`.
"""

from __future__ import annotations

from ductape_cli.cli.basics import open_engine, print_json
from ductape_cli.cli.plain_argv import Options, call_plain, parse_plain

HISTORY_OPTIONS: Options = {
    "--follow": ("follow", True),
    "-f": ("follow", True),
    "--json": ("as_json", True),
}


def fast_history(args: list[str]) -> int | None:
    """`ductape history` from its argv tokens: the exit code, or None when typer must parse them."""
    return call_plain(parse_plain(args, HISTORY_OPTIONS), show_history)


def show_history(
    run_id: str, *, follow: bool = False, types: list[str] | None = None, as_json: bool = False
) -> int:
    """Print a run's events (as they come with `follow`, until the run ends); returns 0."""
    from ductape_cli.render.output import print_events

    eng = open_engine()
    try:
        if follow:
            for batch in eng.follow(run_id, types=types):
                print_events(batch, as_json)
            return 0
        events = eng.history(run_id, types=types)
        if as_json:
            print_json(eng.export(run_id, events), compact=len(events) > 200)
        else:
            print_events(events, as_json)
        return 0
    finally:
        eng.close()
