"""The Python API exposes what the CLI does (issue 15, item 18): typed results, DuctapeError subclasses,
and the CLI reaching the engine only through these public methods."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from ductape_cli.errors import (
    DuctapeError,
    InvalidInput,
    InvalidState,
    RunNotFound,
    ScheduleNotFound,
)

FLOW = """
from pathlib import Path

from ductape_cli import workflow


def effect(tag, value):
    with open("calls.log", "a", encoding="utf-8") as log:
        log.write(tag + "\\n")
    if Path(tag + ".fail").exists():
        raise RuntimeError(tag + " is down")
    return value


@workflow("ship", rollback_strategy="none", signals={"go": {}}, queries={"progress": lambda ctx: {"done": ctx.completed_steps}})
async def ship(ctx):
    order = await ctx.step("validate", lambda: effect("validate", {"total": ctx.input.total}))
    await ctx.checkpoint("validated", order)
    charge = await ctx.step("charge", lambda: effect("charge", {"id": "ch_1", "amount": order["total"]}))
    if ctx.input.wait:
        await ctx.wait_for_signal("go")
    ctx.emit_event("charged", {"id": charge["id"]})
    return {"total": order["total"], "charge": charge["id"]}
"""


@pytest.fixture
def eng(project: Any) -> Any:
    project.write("ship", FLOW)
    engine = project.engine()
    yield engine
    engine.close()


def calls(project: Any) -> list[str]:
    path = project.root / "calls.log"
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def test_runs_made_from_runs_return_typed_results(project: Any, eng: Any) -> None:
    from ductape_cli.engine.records import Comparison, Family, RunResult

    original = eng.run("ship", {"total": 10})
    assert (
        isinstance(original, RunResult)
        and original.status == "completed"
        and original.output == {"total": 10, "charge": "ch_1"}
    )
    assert original["completed_steps"] == original.completed_steps == ["validate", "charge"]
    replayed = eng.replay(original.workflow_id, reason="again")
    assert isinstance(replayed, RunResult) and replayed.replayed_from == original.workflow_id
    restarted = eng.restart(original.workflow_id, set_values={"total": 5})
    assert restarted.restarted_from == original.workflow_id and restarted.output["total"] == 5
    family = eng.related(replayed.workflow_id)
    assert isinstance(family, Family) and family.root == original.workflow_id
    assert [e["type"] for e in family.executions] == ["original", "replay", "restart"]
    comparison = eng.compare(original.workflow_id, restarted.workflow_id)
    assert isinstance(comparison, Comparison) and comparison.input_diff == {"total": [10, 5]}
    assert json.loads(json.dumps(comparison)) == comparison.to_dict()


def test_resume_continues_a_failed_run_as_the_cli_does(project: Any, eng: Any) -> None:
    (project.root / "charge.fail").write_text("")
    failed = eng.run("ship", {"total": 3})
    assert failed.status == "failed" and failed.failed_step == "charge"
    again = eng.resume(failed.workflow_id, from_checkpoint="validated")
    assert again.status == "failed" and calls(project) == ["validate", "charge", "charge"]
    (project.root / "charge.fail").unlink()
    resumed = eng.resume(failed.workflow_id)
    assert resumed.status == "completed" and resumed.workflow_id == failed.workflow_id
    assert calls(project) == [
        "validate",
        "charge",
        "charge",
        "charge",
    ]  # only the failed step ran again
    with pytest.raises(InvalidState, match="completed"):
        eng.resume(failed.workflow_id)


def test_signal_query_cancel_status_step_events(project: Any, eng: Any) -> None:
    from ductape_cli.engine.records import CancelResult, CustomEvent, RunDetail, StepDetail

    waiting = eng.run("ship", {"total": 7, "wait": True})
    assert waiting.status == "running" and waiting.waiting["signals"] == ["go"]
    assert eng.query(waiting.workflow_id, "progress") == {"done": ["validate", "charge"]}
    detail = eng.status(waiting.workflow_id)
    assert isinstance(detail, RunDetail) and [s["tag"] for s in detail.steps][:3] == [
        "validate",
        "validated",
        "charge",
    ]
    done = eng.signal(waiting.workflow_id, "go", {})
    assert done.status == "completed"
    step = eng.step(done.workflow_id, "charge")
    assert isinstance(step, StepDetail) and step.output == {"id": "ch_1", "amount": 7}
    events = eng.events(done.workflow_id)
    assert [type(e) for e in events] == [CustomEvent] and events[0].payload == {"id": "ch_1"}
    assert events[0].timestamp.endswith("Z")
    other = eng.run("ship", {"total": 1, "wait": True})
    cancelled = eng.cancel(other.workflow_id, "changed my mind")
    assert (
        isinstance(cancelled, CancelResult)
        and cancelled.cancelled
        and cancelled.reason == "changed my mind"
    )


def test_schedules_through_the_api(eng: Any) -> None:
    from ductape_cli.engine.records import Schedule

    job = eng.dispatch("ship", {"total": 1}, cron="0 9 * * *", timezone="Europe/Paris")
    assert isinstance(job, Schedule) and job.kind == "cron" and len(job.next_fire_times) == 3
    assert [s.job_id for s in eng.list_schedules()] == [job.job_id]
    assert eng.pause_schedule(job.job_id).paused is True
    assert eng.resume_schedule(job.job_id).paused is False
    assert eng.get_schedule(job.job_id).runs == []
    eng.delete_schedule(job.job_id)
    assert eng.list_schedules() == []
    later = eng.dispatch("ship", after="1h")
    assert later.kind == "once"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda e: e.status("wf_nope"), RunNotFound),
        (lambda e: e.replay("wf_nope"), RunNotFound),
        (lambda e: e.dispatch("ship", cron="61 * * * *"), InvalidInput),
        (lambda e: e.list_runs(status="weird"), InvalidInput),
        (lambda e: e.get_schedule("job_nope"), ScheduleNotFound),
    ],
)
def test_errors_are_ductape_errors(eng: Any, call: Any, error: type[DuctapeError]) -> None:
    with pytest.raises(error):
        call(eng)


CLI = Path(__file__).resolve().parent.parent / "ductape_cli" / "cli"
INTERNALS = (
    "ductape_cli.engine.lineage",
    "ductape_cli.engine.schedules",
    "ductape_cli.engine.history",
    "ductape_cli.definitions",
    "ductape_cli.store",
    "rich",
)


# topic_cmds (topics, components check) belongs to the components work (issue 16).
@pytest.mark.parametrize(
    "module", sorted(p.name for p in CLI.glob("*_cmds.py") if p.name != "topic_cmds.py")
)
def test_the_cli_reaches_the_engine_only_through_its_public_api(module: str) -> None:
    tree = ast.parse((CLI / module).read_text(encoding="utf-8"))
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith(INTERNALS)], module
    private = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "store"]
    assert not private, f"{module} reads the store directly"
