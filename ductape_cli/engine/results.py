"""The shapes users read: the seed's WorkflowResult, a run's status, a step's detail."""

from __future__ import annotations

from typing import Any

from ductape_cli.engine.records import RunDetail, RunResult
from ductape_cli.models import OpKind, Run, RunStatus, StepRecord, StepStatus


def completed_step_tags(journal: dict[int, StepRecord]) -> list[str]:
    return [
        r.tag
        for r in sorted(journal.values(), key=lambda r: r.seq)
        if r.kind == OpKind.STEP and r.status in (StepStatus.COMPLETED, StepStatus.ROLLED_BACK)
    ]


def workflow_result(run: Run, completed_steps: list[str]) -> RunResult:
    """The seed's `WorkflowResult`, plus `workflow_tag` and (while running) `waiting`."""
    return RunResult.from_dict(_result_fields(run, completed_steps))


def _result_fields(run: Run, completed_steps: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "workflow_id": run.id,
        "workflow_tag": run.tag,
        "status": str(run.status),
        "output": run.output,
        "error": run.error,
        "completed_steps": completed_steps,
        "failed_step": run.failed_step,
        "execution_time": run.execution_time_ms,
        "rollback_result": run.rollback_result,
    }
    if not run.status.terminal:
        result["waiting"] = describe_wait(run)
    return result


def describe_wait(run: Run) -> dict[str, Any] | None:
    """What an unfinished run waits for, in words a status line can show."""
    if run.load_error and not run.owner:
        return {
            "kind": "unloadable",
            "attempts": run.load_attempts,
            "retry_at": run.ready_at,
            "detail": f"no worker could load its workflow ({run.load_attempts} tries): {run.load_error}; "
            f"retrying at {_iso(run.ready_at)}",
        }
    if run.status == RunStatus.PENDING:
        return {"kind": "queued", "detail": "queued for a worker (started with --detach)"}
    waiting = run.waiting
    if not waiting:
        if run.owner:
            from ductape_cli.engine.leases import owner_is_dead

            if owner_is_dead(run.owner):
                return {
                    "kind": "orphaned",
                    "detail": f"its owner {run.owner} died; `ductape resume` or a worker takes it over",
                }
            return {"kind": "executing", "detail": f"executing in {run.owner}"}
        return None
    kind = waiting.get("kind")
    info = dict(waiting)
    info.pop("seq", None)
    if kind == "sleep":
        info["detail"] = "sleeping until " + _iso(waiting.get("wake_at"))
    elif kind in ("signal", "hook"):
        names = ", ".join(waiting.get("signals") or [])
        what = f"hook {waiting.get('hook')}" if kind == "hook" else f"signal {names}"
        deadline = waiting.get("deadline")
        info["detail"] = f"waiting for {what}" + (f" until {_iso(deadline)}" if deadline else "")
    elif kind == "child":
        info["detail"] = f"waiting for child workflow {waiting.get('child_id')}"
    else:
        info["detail"] = str(kind)
    return info


def _iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def step_view(record: StepRecord) -> dict[str, Any]:
    view: dict[str, Any] = {
        "seq": record.seq,
        "kind": str(record.kind),
        "tag": record.tag,
        "status": str(record.status),
        "output": record.output,
        "error": record.error,
        "attempts": record.attempts,
        "duration": record.duration_ms,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "rollback_status": record.rollback_status,
    }
    if record.has_rollback:
        view["has_rollback"] = True
    if record.critical:
        view["critical"] = True
    if record.options:
        view["options"] = record.options
    if record.rollback_error:
        view["rollback_error"] = record.rollback_error
    if record.wake_at:
        view["wake_at"] = record.wake_at
    if record.source:
        view["source"] = record.source
    return view


def _settled(view: dict[str, Any], run: Run) -> dict[str, Any]:
    """A wait (or step) left open when the run ended is shown as ended with it, never still waiting."""
    if run.status.terminal and view["status"] in (
        StepStatus.WAITING,
        StepStatus.RUNNING,
        StepStatus.PENDING,
    ):
        view["status"] = "cancelled" if run.status == RunStatus.CANCELLED else "skipped"
        view["reason"] = f"not finished: run {run.status}"
    return view


def in_compiled_order(
    steps: list[dict[str, Any]], unreached: list[dict[str, Any]], compiled: list[str]
) -> list[dict[str, Any]]:
    """Steps the run never reached, placed where the compiled schema has them: after the last listed
    step that comes earlier in the schema, else before the first that comes later."""
    position = {tag: i for i, tag in enumerate(compiled)}

    def rank(row: dict[str, Any]) -> int:
        return position.get(row["tag"], -1) if row.get("kind", "step") == "step" else -1

    out = list(steps)
    for item in sorted(unreached, key=lambda s: position.get(s["tag"], len(compiled))):
        mine = position.get(item["tag"], len(compiled))
        earlier = [i for i, row in enumerate(out) if 0 <= rank(row) < mine]
        later = [i for i, row in enumerate(out) if rank(row) > mine]
        out.insert(earlier[-1] + 1 if earlier else later[0] if later else len(out), item)
    return out


def run_status(
    run: Run,
    journal: dict[int, StepRecord],
    children: list[Run],
    unreached: list[dict[str, Any]],
    compiled: list[str] | None = None,
) -> RunDetail:
    """`ductape status`: the result plus steps, state, lineage and children."""
    status = _result_fields(run, completed_step_tags(journal))
    steps = [_settled(step_view(r), run) for r in sorted(journal.values(), key=lambda r: r.seq)]
    if (
        run.current_step
        and not run.status.terminal
        and run.current_step not in {r.tag for r in journal.values()}
    ):
        steps.append(
            {
                "tag": run.current_step,
                "kind": "step",
                "status": "running",
                "output": None,
                "error": None,
            }
        )
    steps = in_compiled_order(steps, unreached, compiled or [])
    status.update(
        {
            "env": run.env,
            "version": run.version,
            "input": run.input,
            "state": run.state,
            "current_step": run.current_step,
            "created_at": run.created_at,
            "started_at": run.started_at,
            "ended_at": run.ended_at,
            "steps": steps,
            "parent_id": run.parent_id,
            "replayed_from": run.replayed_from,
            "restarted_from": run.restarted_from,
            "resumed_from": run.resumed_from,
            "idempotency_key": run.idempotency_key,
            "metadata": run.metadata,
            "children": [
                {"workflow_id": c.id, "workflow_tag": c.tag, "status": str(c.status)}
                for c in children
            ],
        }
    )
    if run.cancel_requested and not run.status.terminal:
        status["cancel_requested"] = run.cancel_requested
    if run.load_error:
        status["load_error"] = {"message": run.load_error, "attempts": run.load_attempts}
    return RunDetail.from_dict(status)
