"""What CI pipelines read about a run: a report (steps, compensations, children) and waiting for the end.

`run_report` is the one shape the JUnit, GitHub annotation and Markdown
renderers share; it holds plain data (times in ms, sources as ``file:line``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ductape_cli.durations import parse_duration
from ductape_cli.engine.results import describe_wait
from ductape_cli.errors import RunNotFound
from ductape_cli.models import EventType, OpKind, Run, StepStatus

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine

_MAX_CHILD_DEPTH = 5


def run_report(engine: Engine, run_id: str, *, depth: int = 0) -> dict[str, Any]:
    """A run for CI: its result, each step (with source and skip reason), its compensations and children."""
    run = engine.get_run(run_id)
    status = engine.status(run.id)
    steps = []
    for view in status["steps"]:
        kind = view.get("kind")
        if kind not in (OpKind.STEP, OpKind.CHILD):
            continue
        skip = (view.get("options") or {}).get("skip") or {}
        reason = view.get("reason") or skip.get("condition") or skip.get("reason")
        if view.get("status") == StepStatus.SKIPPED and not reason and view.get("error"):
            reason = f"allow_fail: {view['error'].get('message')}"
        steps.append(
            {
                "tag": view["tag"] if kind == OpKind.STEP else f"child {view['tag']}",
                "kind": str(kind),
                "status": str(view.get("status")),
                "duration_ms": view.get("duration"),
                "error": view.get("error"),
                "source": view.get("source"),
                "reason": reason,
                "attempts": view.get("attempts"),
            }
        )
    children = []
    if depth < _MAX_CHILD_DEPTH:
        children = [
            run_report(engine, child["workflow_id"], depth=depth + 1)
            for child in status["children"]
        ]
    return {
        "workflow_id": run.id,
        "workflow_tag": run.tag,
        "status": str(run.status),
        "error": run.error,
        "failed_step": run.failed_step,
        "execution_time": run.execution_time_ms,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "waiting": None if run.status.terminal else describe_wait(run),
        "steps": steps,
        "compensations": _compensations(engine, run),
        "children": children,
    }


def _compensations(engine: Engine, run: Run) -> list[dict[str, Any]]:
    """Each compensation (rollback handler) that ran, with its outcome and how long it took.

    Compensations run one after another from the `rollback_started` event, so each
    one's duration is the time since the previous one ended.
    """
    wanted = [
        EventType.ROLLBACK_STARTED,
        EventType.STEP_ROLLED_BACK,
        EventType.STEP_ROLLBACK_FAILED,
    ]
    events = engine.store.events(run.id, types=[str(t) for t in wanted])
    sources = {
        r.tag: r.source for r in engine.store.load_journal(run.id).values() if r.kind == OpKind.STEP
    }
    found, previous = [], None
    for event in events:
        if event.type == EventType.ROLLBACK_STARTED:
            previous = event.ts
            continue
        failed = event.type == EventType.STEP_ROLLBACK_FAILED
        found.append(
            {
                "tag": event.step,
                "status": "failed" if failed else "completed",
                "error": event.data.get("error") if failed else None,
                "duration_ms": int((event.ts - previous) * 1000) if previous is not None else None,
                "source": sources.get(event.step or ""),
            }
        )
        previous = event.ts
    return found


def wait_for_end(
    engine: Engine, run_id: str, timeout: str | int | None = None, *, poll: float = 0.2
) -> dict[str, Any]:
    """Block until the run ends, or `timeout` passes; returns its result (status `running` on a timeout).

    Reads only: another process (a worker, `ductape signal`) moves the run on.
    """
    limit = parse_duration(timeout, what="--timeout") if timeout is not None else None
    run = engine.get_run(run_id)  # unknown id: exit 2 at once
    clock = engine.clock
    deadline = None if limit is None else clock.now() + limit / 1000
    while True:
        current = engine.store.get_run(run.id)
        if current is None:
            raise RunNotFound(f"run {run.id} was deleted while waiting")
        if current.status.terminal:
            return engine.result(run.id)
        now = clock.now()
        if deadline is not None and now >= deadline:
            result = engine.result(run.id)
            result["timed_out"] = True
            return result
        clock.block(poll if deadline is None else min(poll, max(0.0, deadline - now)))
