"""Progress while `ductape run` executes: a live step tree on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

from ductape_cli.durations import format_duration
from ductape_cli.models import EventType
from ductape_cli.render.operations import progress_line


class PlainProgress:
    """One line per step event, for logs and CI (no colour, no cursor movement)."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        line = progress_line(kind, data)
        if line:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        pass


NOTES = 8  # log lines and waits shown under the live tree (the full log is in `ductape history`)


class LiveProgress:
    """A rich Live step tree with a spinner on the running step.

    Events only change the steps; Live's own thread redraws 12 times a second and
    `close` draws the last frame. Redrawing the whole tree on every event cost a
    run of a few milliseconds a dozen renders, and a run of n steps n² lines.
    """

    def __init__(self, title: str) -> None:
        from rich.live import Live

        from ductape_cli.render.views import console

        self.title = title
        self.steps: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        # Live re-renders `self` on every refresh (via __rich__), so the running step's clock ticks.
        self.live = Live(self, console=console(), refresh_per_second=12, transient=False)
        self.live.start()

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        tag = str(data.get("tag"))
        if kind == EventType.STEP_STARTED:
            self.steps[tag] = {"status": "running", "started": time.monotonic()}
        elif kind == EventType.STEP_COMPLETED:
            self.steps[tag] = {"status": "completed", "duration": data.get("duration_ms")}
        elif kind == EventType.STEP_FAILED:
            self.steps[tag] = {
                "status": "skipped" if data.get("allow_fail") else "failed",
                "error": (data.get("error") or {}).get("message"),
            }
        elif kind == EventType.STEP_RETRIED:
            self.steps.setdefault(tag, {"status": "running", "started": time.monotonic()})[
                "retry"
            ] = data.get("attempt")
        elif kind == EventType.STEP_SKIPPED:
            self.steps[tag] = {"status": "skipped", "error": f"condition {data.get('condition')}"}
        elif kind == EventType.STEP_ROLLED_BACK and tag in self.steps:
            self.steps[tag]["rolled_back"] = True
        elif kind == EventType.STEP_ROLLBACK_FAILED and tag in self.steps:
            self.steps[tag]["rollback_error"] = data.get("error")
        else:
            line = progress_line(kind, data)
            if line:
                self.notes.append(line)

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.spinner import Spinner
        from rich.text import Text
        from rich.tree import Tree

        from ductape_cli.render.status_parts import GLYPHS

        tree = Tree(Text(self.title, style="bold"))
        # Live's thread draws while events arrive: list() copies the steps in one go under the GIL.
        for tag, step in list(self.steps.items()):
            status = step["status"]
            if status == "running":
                elapsed = format_duration((time.monotonic() - step["started"]) * 1000)
                retry = f"  retry {step['retry']}" if step.get("retry") else ""
                tree.add(Spinner("dots", text=Text(f"{tag}  {elapsed}{retry}", style="cyan")))
                continue
            glyph, style = GLYPHS.get(status, ("?", ""))
            label = Text(f"{glyph} ", style=style)
            label.append(tag, style="bold")
            if step.get("duration") is not None:
                label.append(f"  {format_duration(step['duration'])}", style="dim")
            if step.get("rolled_back"):
                label.append("  ↺ rolled back", style="magenta")
            node = tree.add(label)
            if step.get("error"):
                node.add(Text(str(step["error"]), style="red" if status == "failed" else "yellow"))
            if step.get("rollback_error"):
                node.add(Text(f"rollback failed: {step['rollback_error']}", style="red"))
        return Group(tree, *(Text(n, style="dim") for n in self.notes[-NOTES:]))

    def close(self) -> None:
        self.live.stop()
