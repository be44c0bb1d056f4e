"""Where every command's view goes: Rich on a terminal, plain lines to a pipe (JSON is the CLI's).

Each view is named once here with its Rich builder and its plain-lines builder;
the CLI asks for a view by name. The plain builders of every view but
`define`'s and `check`'s never import rich (the `*_parts` modules build a view
once as pieces both sides use); those two flatten the Rich renderable (trees
indent, tables become tab-separated lines, grids `key: value`: the layout
`render/lines.py` gives the others).
User data never passes through Rich markup or emoji codes: the console
has both off, and views build `Text` from it.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

# name -> (rich builder, plain builder); "module:function" so nothing is imported until used
VIEWS: dict[str, tuple[str, str]] = {
    "result": ("views:result_panel", "plain:result_lines"),
    "status": ("views:status_view", "status_parts:status_lines"),
    "cancel": ("views:cancel_view", "plain:cancel_lines"),
    "query": ("views:query_view", "plain:query_lines"),
    "runs": ("views:runs_table", "plain:runs_lines"),
    "timeline": ("views:timeline", "plain:timeline_lines"),
    "step": ("views:step_detail", "detail_parts:step_lines"),
    "events": ("views:events_table", "plain:events_lines"),
    "related": ("lineage:related_tree", "lineage_parts:related_lines"),
    "compare": ("lineage:compare_view", "lineage_parts:compare_lines"),
    "define": ("definitions:define_report", "plain:flatten_view:define"),
    "check": ("definitions:check_report", "plain:flatten_view:check"),
    "definition": ("definitions:show_definition", "definition_parts:definition_lines"),
    "workflows": ("definitions:workflows_table", "detail_parts:workflows_lines"),
    "schedule": ("views:schedule_view", "plain:schedule_lines"),
    "schedules": ("views:schedules_view", "plain:schedules_lines"),
}
# Views whose --json is not the data as it comes: name -> "module:function" that shapes it.
JSON_SHAPES: dict[str, str] = {
    "runs": "plain:runs_json",
}


def terminal(stream: Any = None) -> bool:
    """Whether output goes to a terminal (Rich) or a pipe (plain lines).

    `TTY_COMPATIBLE=1` / `FORCE_COLOR` force the terminal look (as Rich itself
    reads them), `TTY_COMPATIBLE=0` and `TERM=dumb` force plain lines.
    """
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "1"
    if os.environ.get("TERM") == "dumb":
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    stream = stream or sys.stdout
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _resolve(spec: str) -> Callable[..., Any]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(f"ductape_cli.render.{module}"), name.partition(":")[0])


def json_value(name: str, data: Any) -> Any:
    """What `--json` prints for view `name`: the data itself, unless the view shapes it."""
    spec = JSON_SHAPES.get(name)
    return data if spec is None else _resolve(spec)(data)


def rich_view(name: str, data: Any) -> Any:
    return _resolve(VIEWS[name][0])(data)


def plain_lines(name: str, data: Any) -> list[str]:
    spec = VIEWS[name][1]
    if spec.startswith("plain:flatten_view:"):
        from ductape_cli.render.flatten import flatten

        return flatten(rich_view(name, data))
    return _resolve(spec)(data)


def show(name: str, data: Any, *, stream: Any = None) -> None:
    """Print view `name` of `data`: Rich on a terminal, plain lines otherwise."""
    out = stream or sys.stdout
    if terminal(out):
        from ductape_cli.render.views import console

        console(file=out).print(rich_view(name, data))
        return
    lines = plain_lines(name, data)
    if lines:
        out.write("\n".join(lines) + "\n")
        out.flush()


TERMINAL_ROWS = 500  # a rich table of 10,000 rows takes seconds to lay out


def print_events(events: list[dict[str, Any]], as_json: bool) -> None:
    """`history`'s events: JSON lines, or the timeline view (the newest rows only, on a terminal)."""
    import json

    if as_json:
        sys.stdout.write(
            "".join(json.dumps(event, default=str, ensure_ascii=False) + "\n" for event in events)
        )
        sys.stdout.flush()
        return
    if not events:
        return
    if terminal():
        shown = events[-TERMINAL_ROWS:]
        if len(shown) < len(events):
            sys.stdout.write(
                f"(the last {len(shown)} of {len(events)} events; pipe or --json for all)\n"
            )
        events = shown
    show("timeline", events)
