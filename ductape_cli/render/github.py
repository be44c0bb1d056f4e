"""GitHub Actions output: workflow commands (`::error file=…,line=…::…`) and a Markdown job summary.

Workflow commands put a failure on the line of the diff that caused it; the
summary (appended to `$GITHUB_STEP_SUMMARY`) shows the run's status, its
steps with durations and its compensations on the job's page. Plain strings
only: the caller decides where they go.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ductape_cli.durations import format_duration

_ICONS = {
    "completed": "✅",
    "failed": "❌",
    "rolled_back": "↩️",
    "cancelled": "⛔",
    "running": "⏳",
    "pending": "⏳",
    "skipped": "⏭️",
    "waiting": "⏳",
    "rolled_back_step": "↺",
}
_SOURCE = re.compile(r"(?P<file>[^\s:'\"]+\.py):(?P<line>\d+)")


def enabled(flag: bool | None) -> bool:
    """`--annotations/--no-annotations` wins; otherwise on exactly when running on GitHub Actions."""
    if flag is not None:
        return flag
    return os.environ.get("GITHUB_ACTIONS") == "true"


def relative_source(source: str, base: str | None = None) -> tuple[str, str | None]:
    """(file relative to the workspace when inside it, line) from a ``/abs/path.py:12`` source."""
    path, _, line = source.rpartition(":")
    if not line.isdigit():
        path, line = source, ""
    root = Path(base or os.environ.get("GITHUB_WORKSPACE") or Path.cwd())
    try:
        shown = Path(path).resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        shown = path
    return shown, line or None


def command(
    level: str,
    message: str,
    *,
    file: str | None = None,
    line: str | None = None,
    title: str | None = None,
) -> str:
    """One workflow command, escaped as the runner expects (data: % CR LF; properties: also : and ,)."""
    props = [
        f"{k}={_escape_property(v)}"
        for k, v in (("file", file), ("line", line), ("title", title))
        if v
    ]
    head = f"::{level} {','.join(props)}" if props else f"::{level}"
    return f"{head}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def run_annotations(report: dict[str, Any]) -> list[str]:
    """Workflow commands for what went wrong in a run (and its children): failed steps and compensations."""
    lines: list[str] = []
    run_id, tag, status = report["workflow_id"], report["workflow_tag"], report["status"]
    blamed = False
    for step in report["steps"]:
        if step["status"] != "failed":
            continue
        file, line = relative_source(step["source"]) if step.get("source") else (None, None)
        message = (step.get("error") or {}).get("message") or "step failed"
        lines.append(
            command(
                "error",
                message,
                file=file,
                line=line,
                title=f"ductape: {step['tag']} failed ({tag} {run_id})",
            )
        )
        blamed = True
    for compensation in report["compensations"]:
        if compensation["status"] != "failed":
            continue
        file, line = (
            relative_source(compensation["source"]) if compensation.get("source") else (None, None)
        )
        lines.append(
            command(
                "error",
                str(compensation.get("error") or "compensation failed"),
                file=file,
                line=line,
                title=f"ductape: compensation of {compensation['tag']} failed ({tag} {run_id})",
            )
        )
    error = report.get("error") or {}
    if status in ("failed", "rolled_back", "cancelled") and not blamed:
        level = "error" if status == "failed" else "warning"
        lines.append(
            command(
                level, error.get("message") or status, title=f"ductape: {tag} {run_id} {status}"
            )
        )
    for child in report.get("children") or []:
        lines.extend(run_annotations(child))
    return lines


def define_annotations(report: Any) -> list[str]:
    """Workflow commands for `define --check` problems: compile errors at their line, stale definitions at their file."""
    lines = []
    for error in report.errors:
        match = _SOURCE.search(error)
        if match:
            file, line = relative_source(f"{match['file']}:{match['line']}")
            lines.append(
                command("error", error, file=file, line=line, title="ductape define --check")
            )
        else:
            lines.append(command("error", error, title="ductape define --check"))
    for defined in report.out_of_date:
        source = relative_source(defined.source_path)[0] if defined.source_path else None
        what = (
            "has no stored definition"
            if defined.status == "missing"
            else "changed since its stored definition"
        )
        message = f"workflow {defined.tag} {what}; run `ductape define` and commit the result"
        lines.append(
            command(
                "error", message, file=source, title=f"ductape: {defined.tag} is {defined.status}"
            )
        )
    return lines


def summary_markdown(report: dict[str, Any], level: int = 3) -> str:
    """The run as Markdown for the job summary: status, steps with durations, compensations, children."""
    status = report["status"]
    head = "#" * level
    out = [f"{head} {_ICONS.get(status, '•')} {_cell(report['workflow_tag'])}: {status}", ""]
    facts = [f"run `{report['workflow_id']}`", format_duration(report.get("execution_time"))]
    error = report.get("error") or {}
    if error.get("message"):
        facts.append(f"error: {_cell(error['message'])}")
    if report.get("waiting"):
        facts.append(_cell((report["waiting"] or {}).get("detail") or "waiting"))
    out += [" · ".join(facts), ""]
    if report["steps"]:
        out += ["| Step | Status | Duration |", "|---|---|---|"]
        for step in report["steps"]:
            state = f"{_ICONS.get(step['status'], '•')} {step['status']}"
            if step["status"] == "failed":
                state += f": {_cell((step.get('error') or {}).get('message') or '')}"
            elif step["status"] == "skipped" and step.get("reason"):
                state += f" ({_cell(str(step['reason']))})"
            out.append(
                f"| {_cell(step['tag'])} | {state} | {format_duration(step.get('duration_ms'))} |"
            )
        out.append("")
    if report["compensations"]:
        out += ["**Compensations**", "", "| Step | Result | Duration |", "|---|---|---|"]
        for compensation in report["compensations"]:
            result = (
                "↺ compensated"
                if compensation["status"] == "completed"
                else f"❌ failed: {_cell(str(compensation.get('error') or ''))}"
            )
            out.append(
                f"| {_cell(compensation['tag'] or '-')} | {result} | {format_duration(compensation.get('duration_ms'))} |"
            )
        out.append("")
    for child in report.get("children") or []:
        out.append(summary_markdown(child, min(level + 1, 6)))
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")
