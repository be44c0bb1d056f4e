"""The reading commands without typer: `step`, `events`, `workflows`, `show`, `related`, `compare`, `query`.

Each is one engine read printed as a view (`output`); its body here is the one
the typer command (in `inspect_cmds`, `define_cmds`, `lineage_cmds`,
`run_cmds`) calls too, and its option table (`PLAIN_READS`) is checked against
the typer command's parameters by a test. `cli/plain_argv.py` says what argv
is plain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ductape_cli.cli.basics import open_engine, output
from ductape_cli.cli.plain_argv import Options, call_plain, parse_plain

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine

JSON_ONLY: Options = {"--json": ("as_json", True)}
EVENTS_OPTIONS: Options = {"--type": ("type_", None), "-t": ("type_", None), **JSON_ONLY}
SHOW_OPTIONS: Options = {"--version": ("version", None), "-v": ("version", None), **JSON_ONLY}


def _show(view: str, read: Callable[[Engine], Any], as_json: bool) -> int:
    eng = open_engine()
    try:
        output(view, read(eng), as_json)
        return 0
    finally:
        eng.close()


def show_step(run_id: str, tag: str, *, as_json: bool = False) -> int:
    """Print one step of a run; returns 0."""
    return _show("step", lambda eng: eng.step(run_id, tag), as_json)


def show_events(run_id: str, *, type_: str | None = None, as_json: bool = False) -> int:
    """Print a run's custom events (only those of `type_` when given); returns 0."""
    return _show("events", lambda eng: eng.events(run_id, type_), as_json)


def show_workflows(*, as_json: bool = False) -> int:
    """Print the defined workflows; returns 0."""
    return _show("workflows", lambda eng: eng.workflows(), as_json)


def show_definition(tag: str, *, version: str | None = None, as_json: bool = False) -> int:
    """Print one stored definition (the latest, or `version`); returns 0."""
    return _show("definition", lambda eng: eng.show(tag, version), as_json)


def show_related(run_id: str, *, as_json: bool = False) -> int:
    """Print a run's family; returns 0."""
    return _show("related", lambda eng: eng.related(run_id), as_json)


def show_compare(run_a: str, run_b: str, *, as_json: bool = False) -> int:
    """Print what differs between two runs; returns 0."""
    return _show("compare", lambda eng: eng.compare(run_a, run_b), as_json)


def show_query(run_id: str, name: str, *, as_json: bool = False) -> int:
    """Print a run's answer to a declared query; returns 0."""
    return _show("query", lambda eng: eng.query(run_id, name), as_json)


# command -> (its option table, how many arguments, its body)
PLAIN_READS: dict[str, tuple[Options, int, Callable[..., int]]] = {
    "step": (JSON_ONLY, 2, show_step),
    "events": (EVENTS_OPTIONS, 1, show_events),
    "workflows": (JSON_ONLY, 0, show_workflows),
    "show": (SHOW_OPTIONS, 1, show_definition),
    "related": (JSON_ONLY, 1, show_related),
    "compare": (JSON_ONLY, 2, show_compare),
    "query": (JSON_ONLY, 2, show_query),
}


def fast_read(command: str, args: list[str]) -> int | None:
    """`ductape COMMAND` from its argv tokens: the exit code, or None when typer must parse them."""
    options, arguments, body = PLAIN_READS[command]
    return call_plain(parse_plain(args, options, arguments), body)


def _fast(command: str) -> Callable[[list[str]], int | None]:
    return lambda args: fast_read(command, args)


# what `cli/app.PLAIN_COMMANDS` names: one entry point a command, as for `run` and `status`
fast_step = _fast("step")
fast_events = _fast("events")
fast_workflows = _fast("workflows")
fast_show = _fast("show")
fast_related = _fast("related")
fast_compare = _fast("compare")
fast_query = _fast("query")
