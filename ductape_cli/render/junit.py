"""A run as a JUnit XML report: the run is the testsuite, each step (and compensation) a testcase.

Follows the JUnit schema Jenkins, GitLab and GitHub read (Ant's junit.xsd plus
`skipped`): every testsuite carries name, tests, failures, errors, skipped,
time, timestamp, hostname, id, `properties`, `system-out` and `system-err`;
every testcase name, classname and time. A failed step is a `failure` whose
text names the step's source file:line; a run that failed outside any step
(handler error, timeout, non-determinism) is an `error` on a testcase for
the run itself; a run still waiting is a skipped testcase saying what for.
Children are testsuites of their own in the same file.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

from ductape_cli.render.github import relative_source


def junit_xml(report: dict[str, Any]) -> str:
    """The report (from `engine.ci.run_report`) as a JUnit XML document."""
    root = ET.Element("testsuites", {"name": f"ductape {report['workflow_tag']}"})
    suites = _flatten(report)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    time_total = 0.0
    for index, run in enumerate(suites):
        suite = _suite(run, index)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key) or 0)
        time_total += float(suite.get("time") or 0)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _seconds(time_total * 1000))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _flatten(report: dict[str, Any]) -> list[dict[str, Any]]:
    out = [report]
    for child in report.get("children") or []:
        out.extend(_flatten(child))
    return out


def _suite(run: dict[str, Any], index: int) -> ET.Element:
    tag = run["workflow_tag"]
    started = run.get("started_at") or run.get("created_at") or 0.0
    suite = ET.Element(
        "testsuite",
        {
            "name": f"{tag} {run['workflow_id']}",
            "id": str(index),
            "package": tag,
            "timestamp": datetime.fromtimestamp(started, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "hostname": socket.gethostname() or "localhost",
            "time": _seconds(run.get("execution_time")),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name in ("workflow_id", "workflow_tag", "status", "failed_step"):
        if run.get(name) is not None:
            ET.SubElement(properties, "property", {"name": name, "value": str(run[name])})
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for step in run["steps"]:
        suite.append(_step_case(tag, step, counts))
    for compensation in run["compensations"]:
        suite.append(_compensation_case(tag, compensation, counts))
    run_case = _run_case(run, counts)
    if run_case is not None:
        suite.append(run_case)
    for key, value in counts.items():
        suite.set(key, str(value))
    ET.SubElement(suite, "system-out").text = f"run {run['workflow_id']} {run['status']}"
    ET.SubElement(suite, "system-err").text = (run.get("error") or {}).get("message") or ""
    return suite


def _case(classname: str, name: str, duration_ms: Any, source: str | None) -> ET.Element:
    attrs = {"name": name, "classname": classname, "time": _seconds(duration_ms)}
    if source:
        path, line = relative_source(source)
        attrs["file"] = path
        if line:
            attrs["line"] = line
    return ET.Element("testcase", attrs)


def _step_case(tag: str, step: dict[str, Any], counts: dict[str, int]) -> ET.Element:
    case = _case(tag, step["tag"], step.get("duration_ms"), step.get("source"))
    counts["tests"] += 1
    status = step["status"]
    if status == "failed":
        error = step.get("error") or {}
        message = error.get("message") or "step failed"
        where = (
            ":".join(filter(None, relative_source(step["source"])))
            if step.get("source")
            else step["tag"]
        )
        failure = ET.SubElement(
            case,
            "failure",
            {"message": message, "type": error.get("type") or error.get("code") or "StepFailed"},
        )
        attempts = f" after {step['attempts']} attempts" if (step.get("attempts") or 0) > 1 else ""
        failure.text = f"{where}: step {step['tag']} failed{attempts}: {message}"
        counts["failures"] += 1
    elif status in ("skipped", "pending", "running", "waiting"):
        reason = step.get("reason") or status
        ET.SubElement(case, "skipped", {"message": str(reason)})
        counts["skipped"] += 1
    return case


def _compensation_case(
    tag: str, compensation: dict[str, Any], counts: dict[str, int]
) -> ET.Element:
    case = _case(
        f"{tag}.compensation",
        f"compensate {compensation['tag']}",
        compensation.get("duration_ms"),
        compensation.get("source"),
    )
    counts["tests"] += 1
    if compensation["status"] == "failed":
        message = compensation.get("error") or "compensation failed"
        failure = ET.SubElement(
            case, "failure", {"message": str(message), "type": "CompensationFailed"}
        )
        where = (
            ":".join(filter(None, relative_source(compensation["source"])))
            if compensation.get("source")
            else compensation["tag"]
        )
        failure.text = f"{where}: rollback of {compensation['tag']} failed: {message}"
        counts["failures"] += 1
    return case


def _run_case(run: dict[str, Any], counts: dict[str, int]) -> ET.Element | None:
    """A testcase for the run itself when its outcome is not told by a step: an error outside steps, or still waiting."""
    status, error = run["status"], run.get("error") or {}
    failed_steps = {s["tag"] for s in run["steps"] if s["status"] == "failed"}
    if status in ("failed", "rolled_back", "cancelled") and not (
        run.get("failed_step") in failed_steps or f"child {run.get('failed_step')}" in failed_steps
    ):
        case = _case(
            run["workflow_tag"], f"run {run['workflow_id']}", run.get("execution_time"), None
        )
        kind = "failure" if status == "cancelled" else "error"
        element = ET.SubElement(
            case,
            kind,
            {
                "message": error.get("message") or status,
                "type": error.get("code") or status.upper(),
            },
        )
        element.text = f"run {run['workflow_id']} {status}: {error.get('message') or '-'}"
        counts["tests"] += 1
        counts["failures" if kind == "failure" else "errors"] += 1
        return case
    if status in ("running", "pending"):
        case = _case(
            run["workflow_tag"], f"run {run['workflow_id']}", run.get("execution_time"), None
        )
        detail = (run.get("waiting") or {}).get("detail") or "still running"
        ET.SubElement(case, "skipped", {"message": f"still running: {detail}"})
        counts["tests"] += 1
        counts["skipped"] += 1
        return case
    return None


def _seconds(ms: Any) -> str:
    return f"{(ms or 0) / 1000:.3f}"
