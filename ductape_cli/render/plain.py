"""Plain-text results for pipes and CI logs: no colour, no rich import (it costs ~40 ms to load)."""

from __future__ import annotations

import json
from typing import Any

from ductape_cli.durations import format_duration


def result_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"status: {result['status']}", f"run: {result['workflow_id']}", f"time: {format_duration(result.get('execution_time'))}"]
    if result.get("output") is not None:
        lines.append("output: " + json.dumps(result["output"], default=str, ensure_ascii=False))
    error = result.get("error")
    if error:
        where = f" (step {error.get('step')})" if error.get("step") else ""
        lines.append(f"error: {error.get('message')}{where} [{error.get('code')}]")
    rollback = result.get("rollback_result")
    if rollback:
        lines.append("rolled back: " + (", ".join(rollback.get("rolled_back_steps") or []) or "-"))
        lines.extend(f"rollback failed: {f['tag']}: {f['error']}" for f in rollback.get("failed_steps") or [])
    waiting = result.get("waiting")
    if waiting:
        lines.append(f"waiting: {waiting.get('detail', '')}")
    return lines
