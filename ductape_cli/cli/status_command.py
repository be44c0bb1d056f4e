"""`ductape status` without typer: the command's body, and its option table for `cli/plain_argv.py`.

The typer command (`cli/inspect_cmds.status`) calls the same `show_status`.
"""

from __future__ import annotations

from ductape_cli.cli.basics import exit_code_for, open_engine, output
from ductape_cli.cli.plain_argv import Options, call_plain, parse_plain

STATUS_OPTIONS: Options = {"--json": ("as_json", True)}


def fast_status(args: list[str]) -> int | None:
    """`ductape status` from its argv tokens: the exit code, or None when typer must parse them."""
    return call_plain(parse_plain(args, STATUS_OPTIONS), show_status)


def show_status(run_id: str, *, as_json: bool = False) -> int:
    """Print a run's status view; returns its status's exit code (0 while it is still running)."""
    eng = open_engine()
    try:
        info = eng.status(run_id)
        output("status", info, as_json)
        return exit_code_for(info["status"]) if info["status"] != "running" else 0
    finally:
        eng.close()
