"""Every operation and progress event as one line of text: the one table, for all renderers.

`describe_operation` names an operation of a compiled definition (`define`'s
diff, `workflows show`); `progress_line` names what a running execution
reports (`run`'s plain progress and the live tree's notes). Both share the
wording of each kind. No rich here: plain strings, so the engine's diff can
use them without loading the terminal renderer.
"""

from __future__ import annotations

import json
from typing import Any

from ductape_cli.durations import format_duration
from ductape_cli.models import EventType, Lifecycle


def describe_operation(op: dict[str, Any]) -> str:
    """One short line for a non-step operation: ``sleep 5.0s``, ``wait for signal approve (timeout 1h 0m)``."""
    kind = op.get("kind")
    if kind == "sleep":
        length = (
            format_duration(op["duration_ms"]) if "duration_ms" in op else str(op.get("duration"))
        )
        return f"sleep {length}" + (f" ({op['name']})" if op.get("name") else "")
    if kind == "signal":
        timeout = op.get("timeout_ms")
        shown = format_duration(timeout) if isinstance(timeout, (int, float)) else timeout
        what = (
            f"hook {op['hook']}"
            if op.get("hook")
            else "signal " + " | ".join(op.get("signals", []))
        )
        return f"wait for {what}" + (f" (timeout {shown})" if shown else "")
    if kind == "checkpoint":
        return f"checkpoint {op.get('name')}"
    if kind == "child":
        return f"child workflow {op.get('workflow')} as {op.get('child_id')}"
    if kind == "component":
        args = op.get("args") or {}
        shown = " ".join(
            f"{k}={v}" for k, v in args.items() if isinstance(v, (str, int, float, bool))
        )
        return f"{op.get('component')}.{op.get('method')}" + (f" {shown}" if shown else "")
    if kind == "rollback":
        return f"trigger rollback ({op.get('reason')})"
    if kind == "hook":
        return f"create hook {op.get('name')}"
    if kind == "patch":
        return f"patched {op.get('change_id')}"
    if kind == "event":
        return f"emit event {op.get('type')}"
    return str(kind)


def progress_line(kind: str, data: dict[str, Any]) -> str | None:
    tag = data.get("tag")
    if kind == EventType.STEP_STARTED:
        return f"… {tag}"
    if kind == EventType.STEP_COMPLETED:
        return f"✓ {tag} ({format_duration(data.get('duration_ms'))})"
    if kind == EventType.STEP_FAILED:
        mark = "⊘" if data.get("allow_fail") else "✗"
        return f"{mark} {tag}: {(data.get('error') or {}).get('message')}"
    if kind == EventType.STEP_RETRIED:
        return f"↻ {tag} attempt {data.get('attempt')} failed: {(data.get('error') or {}).get('message')}"
    if kind == EventType.STEP_SKIPPED:
        return f"⊘ {tag} skipped ({data.get('condition')})"
    if kind == EventType.STEP_ROLLED_BACK:
        return f"↺ {tag} rolled back"
    if kind == EventType.STEP_ROLLBACK_FAILED:
        return f"✗ rollback of {tag} failed: {data.get('error')}"
    if kind == EventType.CHECKPOINT_CREATED:
        return "◆ " + describe_operation({"kind": "checkpoint", "name": data.get("name")})
    if kind == EventType.SLEEP_STARTED:
        return f"◷ sleeping {format_duration(data.get('duration_ms'))}"
    if kind == EventType.SIGNAL_RECEIVED:
        return f"✉ signal {data.get('name')}"
    if kind == EventType.LOG:
        details = data.get("data")
        extra = " " + json.dumps(details, default=str, ensure_ascii=False) if details else ""
        return f"{data.get('level')}: {data.get('message')}{extra}"
    if kind == Lifecycle.WAITING:
        waiting = data.get("waiting") or {}
        if waiting.get("kind") in ("signal", "hook"):
            return f"◷ waiting for {', '.join(waiting.get('signals') or [])}"
    return None
