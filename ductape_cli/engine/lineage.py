"""Runs made from runs (replay, restart, resume from a point) and reading a run's family.

replay: the original input, fresh state (or copied up to a step), a new run. restart:
new or modified input, fresh state, a new run. resume: the same run, its journal kept
up to a step or checkpoint. Everything is validated before anything is written.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace as copy_record
from typing import TYPE_CHECKING, Any

from ductape_cli.engine.journal import Observer
from ductape_cli.errors import InvalidInput, InvalidState
from ductape_cli.mappings import deep_merge
from ductape_cli.models import EventType, OpKind, Run, RunStatus, StepRecord, StepStatus
from ductape_cli.store import EventRow

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine

LINKS = {
    "replayed_from": "replay",
    "restarted_from": "restart",
    "resumed_from": "resume",
    "parent_id": "child",
}
_MISSING: Any = object()


# -- replay ---------------------------------------------------------------------


def replay(
    engine: Engine,
    run_id: str,
    *,
    reason: str | None = None,
    idempotency_key: str | None = None,
    timeout: int | str | None = None,
    from_step: str | None = None,
    step_outputs: Mapping[str, Any] | None = None,
    observer: Observer | None = None,
    wait: bool = False,
) -> dict[str, Any]:
    """A new run with the original input and fresh state (`ctx.is_replay`, `ctx.replay_reason`).

    With `from_step`, the steps before it return the original's outputs (or `step_outputs`
    overrides) without running, and `from_step` and everything after it execute.
    """
    original = engine.get_run(run_id)
    seeded: list[StepRecord] = []
    if from_step is not None:
        seeded = _rows_before_step(
            original, engine.store.load_journal(original.id), from_step, dict(step_outputs or {})
        )
    elif step_outputs:
        raise InvalidInput(
            "--step-output needs --from-step: it replaces the outputs of steps before that step"
        )
    lineage = {k: v for k, v in (("replay_reason", reason), ("replay_from_step", from_step)) if v}

    def seed(run_id: str) -> tuple[list[StepRecord], list[EventRow]]:
        rows = [copy_record(r, run_id=run_id) for r in seeded]
        return rows, _copied_events(rows, original.id, engine.clock.now())

    return _start_linked(
        engine,
        original,
        original.input,
        "replayed_from",
        lineage,
        idempotency_key,
        timeout,
        observer,
        wait,
        seed if seeded else None,
    )


def _rows_before_step(
    original: Run, journal: dict[int, StepRecord], tag: str, overrides: dict[str, Any]
) -> list[StepRecord]:
    rows = sorted(journal.values(), key=lambda r: r.seq)
    target = next((r for r in rows if r.kind == OpKind.STEP and r.tag == tag), None)
    if target is None:
        raise InvalidInput(
            f"run {original.id} has no step {tag!r} (steps: {_tags(rows, OpKind.STEP)})"
        )
    before = [r for r in rows if r.seq < target.seq]
    unknown = [
        name for name in overrides if name not in {r.tag for r in before if r.kind == OpKind.STEP}
    ]
    if unknown:
        raise InvalidInput(
            f"--step-output {unknown[0]}: not a step before {tag!r} in run {original.id} "
            f"(steps before it: {_tags(before, OpKind.STEP)})"
        )
    _refuse_compensated(original, before, tag)
    copies = []
    for record in before:
        options = {**record.options, "replayed_from": original.id}
        record = copy_record(record, options=options)
        if record.kind == OpKind.STEP and record.tag in overrides:
            record.status, record.output, record.error = (
                StepStatus.COMPLETED,
                overrides[record.tag],
                None,
            )
            record.options["overridden"] = True
        copies.append(record)
    return copies


def _refuse_compensated(original: Run, before: list[StepRecord], tag: str) -> None:
    """A copied step whose compensation ran (or was tried) would be undone again by the new run:
    the journal says its effect is gone, so the new run may not reuse its output."""
    undone = [r for r in before if r.kind == OpKind.STEP and r.rollback_status is not None]
    if not undone:
        return
    names = ", ".join(
        f"{r.tag} ({'compensated' if r.rollback_status == 'completed' else 'compensation failed'})"
        for r in undone
    )
    raise InvalidState(
        f"cannot replay run {original.id} from {tag!r}: steps before it were compensated by its rollback: {names}. "
        f"Replay from the first of them so it runs again (`ductape replay {original.id} --from-step {undone[0].tag}`) "
        f"or start fresh with `ductape restart {original.id}`"
    )


_COPIED_EVENT = {
    StepStatus.COMPLETED: EventType.STEP_COMPLETED,
    StepStatus.SKIPPED: EventType.STEP_SKIPPED,
    StepStatus.FAILED: EventType.STEP_FAILED,
}


def _copied_events(rows: list[StepRecord], original_id: str, now: float) -> list[EventRow]:
    """History for the copied rows, so the new run's timeline shows where they came from."""
    events: list[EventRow] = []
    for r in rows:
        if r.kind == OpKind.CHECKPOINT:
            events.append(
                (
                    now,
                    EventType.CHECKPOINT_CREATED,
                    None,
                    {"name": r.tag, "data": r.output, "replayed_from": original_id},
                )
            )
        elif r.kind == OpKind.STEP and r.status in _COPIED_EVENT:
            data = {
                "replayed_from": original_id,
                "overridden": r.options.get("overridden"),
                "error": r.error,
            }
            events.append(
                (now, _COPIED_EVENT[r.status], r.tag, {k: v for k, v in data.items() if v})
            )
    return events


# -- restart --------------------------------------------------------------------


def restart(
    engine: Engine,
    run_id: str,
    *,
    input: Any = None,
    set_values: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    input_override: Any = None,
    merge: bool = False,
    reason: str | None = None,
    idempotency_key: str | None = None,
    timeout: int | str | None = None,
    observer: Observer | None = None,
    wait: bool = False,
) -> dict[str, Any]:
    """A new run with new or modified input and fresh state, linked as `restarted_from`."""
    original = engine.get_run(run_id)
    new_input = restart_input(
        original.input,
        input=input,
        set_values=set_values,
        input_override=input_override,
        merge=merge,
    )
    lineage = {"restart_reason": reason} if reason else {}
    return _start_linked(
        engine,
        original,
        new_input,
        "restarted_from",
        lineage,
        idempotency_key,
        timeout,
        observer,
        wait,
    )


def restart_input(
    original: Any,
    *,
    input: Any = None,
    set_values: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    input_override: Any = None,
    merge: bool = False,
) -> Any:
    """The restarted run's input: `input`/`input_override` replace it (or deep-merge into it
    with `merge`), then each dotted `set_values` key is assigned."""
    if input is not None and input_override is not None:
        raise InvalidInput("give either --input or --input-override, not both")
    given = input if input is not None else input_override
    pairs = list(set_values.items() if isinstance(set_values, Mapping) else set_values or ())
    if given is None and not pairs:
        raise InvalidInput(
            "restart needs new input: --input, --input-override or --set (to run the same input again, use replay)"
        )
    base = copy.deepcopy(original if original is not None else {})
    if given is not None:
        if merge:
            if not isinstance(base, dict) or not isinstance(given, dict):
                raise InvalidInput(
                    "--merge needs the original input and the override to be JSON objects"
                )
            base = deep_merge(base, given)
        else:
            base = copy.deepcopy(given)
    for key, value in pairs:
        base = _set_path(base, key, value)
    return base


def _set_path(doc: Any, key: str, value: Any) -> Any:
    """Assign `value` at dotted `key` ("customer.address.city", "items.0.qty") in `doc`."""
    parts = key.split(".")
    if not key or any(not p.strip() for p in parts):
        raise InvalidInput(f"--set {key!r}: a dotted key needs a name between every dot")
    doc = {} if doc is None else doc
    node = doc
    for depth, part in enumerate(parts):
        index: Any = part
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                where = ".".join(parts[: depth + 1])
                raise InvalidInput(
                    f"--set {key}: {where} is not an index of a list of {len(node)} items"
                )
            index = int(part)
        elif not isinstance(node, dict):
            parent = ".".join(parts[:depth]) or "the input"
            raise InvalidInput(f"--set {key}: {parent} is a {_json_type(node)}, not an object")
        if depth == len(parts) - 1:
            node[index] = value
        else:
            if isinstance(node, dict) and node.get(part) is None:
                node[part] = {}
            node = node[index]
    return doc


# -- resume ---------------------------------------------------------------------


def resume_from(
    engine: Engine,
    run_id: str,
    *,
    from_checkpoint: str | None = None,
    from_step: str | None = None,
    skip: Iterable[str] = (),
    input: Any = None,
    observer: Observer | None = None,
    wait: bool = False,
) -> dict[str, Any]:
    """Continue the same run from its journal, re-running from a step or checkpoint, or past its failure.

    Steps before the resume point keep their outputs; the rest run again, except
    `skip` tags, which are recorded skipped and return None. `input` (with a step or
    checkpoint) is deep-merged into the run's input for the re-executed part. Refused
    for completed, rolled-back and started-then-cancelled runs (replay or restart those).
    """
    run = engine.get_run(run_id)
    skips = list(dict.fromkeys(skip or ()))
    if from_checkpoint is not None and from_step is not None:
        raise InvalidInput("give either --from-checkpoint or --from-step, not both")
    if input is not None and from_checkpoint is None and from_step is None:
        raise InvalidInput(
            "--input needs --from-checkpoint or --from-step: it is merged into the input of the part that runs again"
        )
    if input is not None and not (isinstance(input, dict) and isinstance(run.input, dict)):
        raise InvalidInput(
            "resume --input must be a JSON object, merged into the run's input (an object)"
        )
    if from_checkpoint is None and from_step is None and not skips and not run.status.terminal:
        return engine._continue(run.id, observer=observer, wait=wait)
    rows = sorted(engine.store.load_journal(run.id).values(), key=lambda r: r.seq)
    unfinished = [r for r in rows if r.kind == OpKind.STEP and r.rollback_status == "failed"]
    if unfinished and run.status in (RunStatus.FAILED, RunStatus.CANCELLED):
        if from_checkpoint is not None or from_step is not None or skips:
            raise InvalidState(
                f"run {run.id} has failed compensations ({', '.join(r.tag for r in unfinished)}); "
                f"finish its rollback first: `ductape resume {run.id}` retries them"
            )
        return _retry_compensations(engine, run, unfinished, observer, wait)
    _refuse_unresumable(run, rows)
    restored = None
    if from_step is not None:
        target = next((r for r in rows if r.kind == OpKind.STEP and r.tag == from_step), None)
        if target is None:
            known = _tags(rows, OpKind.STEP)
            raise InvalidInput(f"run {run.id} has not recorded step {from_step!r} (steps: {known})")
        cut: int | None = target.seq
    elif from_checkpoint is not None:
        checkpoint = next(
            (r for r in reversed(rows) if r.kind == OpKind.CHECKPOINT and r.tag == from_checkpoint),
            None,
        )
        if checkpoint is None:
            known = _tags(rows, OpKind.CHECKPOINT)
            raise InvalidInput(
                f"run {run.id} has no checkpoint {from_checkpoint!r} (checkpoints: {known})"
            )
        cut, restored = checkpoint.seq + 1, {"name": checkpoint.tag, "data": checkpoint.output}
    else:  # past the failure: the failed operation and everything after it run again
        cut = next((r.seq for r in rows if r.status == StepStatus.FAILED), None)
    _check_skips(engine, run, rows, cut, skips)
    merged_input = None
    if input is not None:
        merged_input = engine.definition(run.tag).validate_input(deep_merge(run.input, input))
    dead = _check_owner(engine, run)
    doomed = [r for r in rows if cut is not None and r.seq >= cut]
    now = engine.clock.now()
    lineage = {
        k: v for k, v in run.lineage.items() if k not in ("restored_checkpoint", "skip_steps")
    }
    if restored is not None:
        lineage["restored_checkpoint"] = restored
    if skips:
        lineage["skip_steps"] = skips
    fields: dict[str, Any] = {
        "status": str(RunStatus.RUNNING),
        "output": None,
        "error": None,
        "failed_step": None,
        "rollback_result": None,
        "ended_at": None,
        "phase": None,
        "ready_at": now,
        # Held by this engine until `drive` claims it, so no polling worker takes it in between.
        "owner": engine.owner,
        "lease_expires_at": now + engine.lease_ttl,
        "waiting": None,
        "current_step": None,
        "lineage": lineage,
    }
    if merged_input is not None:
        fields["input"] = merged_input
    if run.status == RunStatus.CANCELLED:
        fields["cancel_requested"] = None
    timeout_ms = run.options.get("timeout_ms")
    if run.status.terminal and timeout_ms:
        fields["deadline"] = now + timeout_ms / 1000  # a finished run gets a fresh timeout window
    data: dict[str, Any] = {
        "resumed_by": "resume",
        "previous_status": str(run.status),
        "from_step": from_step,
        "from_checkpoint": from_checkpoint,
        "skip": skips,
        "rerun": [r.tag for r in doomed if r.kind == OpKind.STEP],
        # What the re-run steps had recorded, so `compare ID ID` can show this attempt against the last one.
        "previous_steps": {r.tag: _side(r) for r in doomed if r.kind == OpKind.STEP},
    }
    if merged_input is not None:
        data["input"], data["previous_input"] = input, run.input
    if not engine.store.rewind_run(
        run.id,
        [r.seq for r in doomed],
        (str(run.status), run.owner),
        fields,
        [(now, EventType.WORKFLOW_RESUMED, None, data)],
    ):
        raise InvalidState(
            f"run {run.id} changed while the resume was prepared; look at it again and retry"
        )
    result = engine.drive(run.id, wait=wait, observer=observer, dead_owners=dead)
    result["resumed"] = {
        k: data[k]
        for k in ("previous_status", "from_step", "from_checkpoint", "skip", "rerun", "input")
        if k in data
    }
    return result


def _retry_compensations(
    engine: Engine, run: Run, unfinished: list[StepRecord], observer: Observer | None, wait: bool
) -> dict[str, Any]:
    """Finish a rollback whose handlers failed: only those handlers run again (with their
    retries); compensations that succeeded are reported, never repeated; no forward step runs."""
    dead = _check_owner(engine, run)
    now = engine.clock.now()
    tags = [r.tag for r in unfinished]
    fields: dict[str, Any] = {
        "status": str(RunStatus.RUNNING),
        "phase": "rolling_back",
        "rollback_result": None,
        "ended_at": None,
        "ready_at": now,
        # Held by this engine until `drive` claims it, so no polling worker takes it in between.
        "owner": engine.owner,
        "lease_expires_at": now + engine.lease_ttl,
        "waiting": None,
        "current_step": None,
        "deadline": None,  # the run's own time is over; its compensations are not bound by it
    }
    data = {"resumed_by": "resume", "previous_status": str(run.status), "retry_compensations": tags}
    if not engine.store.rewind_run(
        run.id,
        [],
        (str(run.status), run.owner),
        fields,
        [(now, EventType.WORKFLOW_RESUMED, None, data)],
        reset_rollbacks=[r.seq for r in unfinished],
    ):
        raise InvalidState(
            f"run {run.id} changed while the resume was prepared; look at it again and retry"
        )
    result = engine.drive(run.id, wait=wait, observer=observer, dead_owners=dead)
    result["resumed"] = {"previous_status": str(run.status), "retry_compensations": tags}
    return result


def _refuse_unresumable(run: Run, rows: list[StepRecord]) -> None:
    compensated = [r.tag for r in rows if r.rollback_status == "completed"]
    if (
        run.status == RunStatus.ROLLED_BACK
        or compensated
        or any(r.kind == OpKind.ROLLBACK for r in rows)
    ):
        undone = f" (compensated: {', '.join(compensated)})" if compensated else ""
        raise InvalidState(
            f"run {run.id} was rolled back{undone}; resuming would continue without those effects. "
            f"Start fresh with `ductape replay {run.id} --from-step TAG` or `ductape restart {run.id}`"
        )
    if run.status == RunStatus.COMPLETED:
        raise InvalidState(
            f"run {run.id} already completed; nothing to resume. "
            f"Run it again with `ductape replay {run.id}` (add --from-step TAG to keep earlier outputs)"
        )
    if run.status == RunStatus.CANCELLED and rows:
        raise InvalidState(
            f"run {run.id} was cancelled after it started; resume only continues runs cancelled before "
            f"their first step. Use `ductape replay {run.id}` or `ductape restart {run.id}`"
        )
    if run.phase == "rolling_back":
        raise InvalidState(
            f"run {run.id} is rolling back; let it finish first (`ductape resume {run.id}`)"
        )


def _check_skips(
    engine: Engine, run: Run, rows: list[StepRecord], cut: int | None, skips: list[str]
) -> None:
    recorded = {r.tag: r for r in rows if r.kind == OpKind.STEP}
    schema = engine.store.get_definition(run.tag, run.version) if run.version else None
    compiled = [s for s in (schema["schema"] if schema else {}).get("steps", []) if s.get("tag")]
    for tag in skips:
        record = recorded.get(tag)
        if record is not None and (cut is None or record.seq < cut):
            raise InvalidInput(
                f"--skip {tag}: that step already {record.status} before the resume point; "
                "only steps that run again can be skipped"
            )
        if record is None and compiled and not any(s.get("dynamic") for s in compiled):
            if tag not in {s["tag"] for s in compiled}:
                known = ", ".join(s["tag"] for s in compiled)
                raise InvalidInput(
                    f"--skip {tag}: workflow {run.tag} has no step {tag!r} (steps: {known})"
                )


def _check_owner(engine: Engine, run: Run) -> tuple[str, ...]:
    """Refuse a run a live process is executing; returns the dead owner to take over from."""
    from ductape_cli.engine.leases import HOST, owner_is_dead, owner_pid, pid_alive

    now = engine.clock.now()
    if not run.owner or run.owner == engine.owner or (run.lease_expires_at or 0) <= now:
        return ()
    if owner_is_dead(run.owner):
        return (run.owner,)
    host, pid = owner_pid(run.owner)
    if host == HOST and pid is not None and pid_alive(pid):
        raise InvalidState(f"run {run.id} is being executed by live process {pid} on this host")
    left = int((run.lease_expires_at or now) - now)
    raise InvalidState(f"run {run.id} is owned by {run.owner}; its lease expires in {left}s")


# -- the family -----------------------------------------------------------------


def related(engine: Engine, run_id: str) -> dict[str, Any]:
    """Every run in `run_id`'s family (original, replays, restarts, resumes, children), tree order."""
    asked = engine.get_run(run_id)
    root, seen = asked, {asked.id}
    while (link := _primary_link(root)) is not None and link[1] not in seen:
        parent = engine.store.get_run(link[1])
        if parent is None:
            break  # the original was deleted: this run heads what is left
        seen.add(parent.id)
        root = parent
    members: dict[str, Run] = {root.id: root}
    found_by: dict[str, str] = {}
    queue = [root.id]
    while queue:
        node = queue.pop(0)
        for run in engine.store.related_runs(node):
            if run.id not in members:
                members[run.id], found_by[run.id] = run, node
                queue.append(run.id)
    children: dict[str, list[str]] = {}
    for run in sorted(members.values(), key=lambda r: (r.created_at, r.id)):
        if run.id != root.id:
            link = _primary_link(run)
            parent_id = link[1] if link and link[1] in members else found_by[run.id]
            children.setdefault(parent_id, []).append(run.id)
    executions: list[dict[str, Any]] = []

    def walk(run_id: str, depth: int) -> None:
        executions.append(_execution_entry(engine, members[run_id], root.id, depth))
        for child in children.get(run_id, []):
            walk(child, depth + 1)

    walk(root.id, 0)
    return {"workflow_id": asked.id, "root": root.id, "executions": executions}


def _primary_link(run: Run) -> tuple[str, str] | None:
    for key in LINKS:
        if getattr(run, key):
            return key, getattr(run, key)
    return None


def _execution_entry(engine: Engine, run: Run, root_id: str, depth: int) -> dict[str, Any]:
    link = _primary_link(run)
    entry: dict[str, Any] = {
        "workflow_id": run.id,
        "workflow_tag": run.tag,
        "type": "original" if run.id == root_id or link is None else LINKS[link[0]],
        "status": str(run.status),
    }
    for key in LINKS:
        if getattr(run, key):
            entry[key] = getattr(run, key)
    reason = run.lineage.get("replay_reason") or run.lineage.get("restart_reason")
    if reason:
        entry["reason"] = reason
    if run.lineage.get("replay_from_step"):
        entry["from_step"] = run.lineage["replay_from_step"]
    if run.lineage.get("replaces_child"):
        entry["replaces_child"] = run.lineage[
            "replaces_child"
        ]  # the original's child for the same call
    entry.update(
        {
            "created_at": int(run.created_at * 1000),
            "execution_time": run.execution_time_ms,
            "depth": depth,
        }
    )
    resumes = [
        {
            "timestamp": e.to_dict()["timestamp"],
            **{k: v for k, v in e.data.items() if v not in (None, [])},
        }
        for e in engine.store.events(run.id, types=[EventType.WORKFLOW_RESUMED])
    ]
    if resumes:
        entry["resumes"] = resumes
    return entry


# -- compare --------------------------------------------------------------------


def compare(engine: Engine, a: str, b: str) -> dict[str, Any]:
    """What differs between two runs: input, each step's status, output and error, the output;
    plus every step's duration side by side."""
    run_a, run_b = engine.get_run(a), engine.get_run(b)
    if run_a.id == run_b.id:
        return _compare_with_previous_attempt(engine, run_a)
    return _compare_sides(
        (run_a.id, run_a, _sides(engine, run_a)), (run_b.id, run_b, _sides(engine, run_b))
    )


def _compare_sides(*pair: tuple[str, Run, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    (id_a, run_a, steps_a), (id_b, run_b, steps_b) = pair
    tags = list(steps_a) + [t for t in steps_b if t not in steps_a]
    step_diffs, steps = [], []
    missing = {"status": "not_reached", "output": None, "error": None, "duration": None}
    for tag in tags:
        full_a, full_b = steps_a.get(tag, missing), steps_b.get(tag, missing)
        side_a = {k: full_a[k] for k in ("status", "output", "error")}
        side_b = {k: full_b[k] for k in ("status", "output", "error")}
        differs = side_a != side_b or not _same(side_a["output"], side_b["output"])
        if differs:
            step_diffs.append({"step": tag, id_a: side_a, id_b: side_b})
        steps.append(
            {
                "step": tag,
                "differs": differs,
                id_a: {"status": side_a["status"], "duration": full_a["duration"]},
                id_b: {"status": side_b["status"], "duration": full_b["duration"]},
            }
        )
    return {
        "workflow_ids": [id_a, id_b],
        "runs": {id_a: _run_summary(run_a), id_b: _run_summary(run_b)},
        "input_diff": diff_values(run_a.input, run_b.input),
        "step_diffs": step_diffs,
        "output_diff": diff_values(run_a.output, run_b.output),
        "steps": steps,
    }


def _compare_with_previous_attempt(engine: Engine, run: Run) -> dict[str, Any]:
    """`compare ID ID`: the run now against its attempt before the last resume that re-ran steps."""
    resumes = [
        e
        for e in engine.store.events(run.id, types=[EventType.WORKFLOW_RESUMED])
        if "previous_steps" in e.data
    ]
    if not resumes:
        raise InvalidInput(
            f"compare needs two different runs (got {run.id} twice, and it was never resumed from a step or checkpoint)"
        )
    last = resumes[-1].data
    now_sides = _sides(engine, run)
    before_sides = dict(now_sides)
    for tag in last.get("rerun") or []:
        before_sides.pop(tag, None)
    before_sides.update(last["previous_steps"])
    before = copy_record(
        run,
        input=last.get("previous_input", run.input),
        status=RunStatus(last.get("previous_status") or run.status),
        output=None,
    )
    return _compare_sides(
        (f"{run.id}@before-resume", before, before_sides), (run.id, run, now_sides)
    )


def _sides(engine: Engine, run: Run) -> dict[str, dict[str, Any]]:
    """Each step of a run as compare shows it: status, output, error message, duration."""
    journal = engine.store.load_journal(run.id)
    return {
        r.tag: _side(r)
        for r in sorted(journal.values(), key=lambda r: r.seq)
        if r.kind == OpKind.STEP
    }


def _side(record: StepRecord) -> dict[str, Any]:
    error = (record.error or {}).get("message") if record.error else None
    return {
        "status": str(record.status),
        "output": record.output,
        "error": error,
        "duration": record.duration_ms,
    }


def _run_summary(run: Run) -> dict[str, Any]:
    return {
        "workflow_tag": run.tag,
        "status": str(run.status),
        "execution_time": run.execution_time_ms,
        "failed_step": run.failed_step,
        "error": (run.error or {}).get("message"),
        "created_at": int(run.created_at * 1000),
    }


def diff_values(a: Any, b: Any) -> dict[str, list[Any]]:
    """Leaves that differ, keyed by dotted path (`customer.email`, `items.0`); `$` is the whole value."""
    out: dict[str, list[Any]] = {}
    _diff(a, b, "", out)
    return out


def _diff(a: Any, b: Any, path: str, out: dict[str, list[Any]]) -> None:
    def dict_like(value: Any) -> bool:
        return value is None or value is _MISSING or isinstance(value, dict)

    if (isinstance(a, dict) or isinstance(b, dict)) and dict_like(a) and dict_like(b):
        left, right = (a if isinstance(a, dict) else {}), (b if isinstance(b, dict) else {})
        if left or right:
            for key in list(left) + [k for k in right if k not in left]:
                _diff(
                    left.get(key, _MISSING),
                    right.get(key, _MISSING),
                    f"{path}.{key}" if path else str(key),
                    out,
                )
            return
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}.{index}" if path else str(index), out)
        return
    a, b = (None if a is _MISSING else a), (None if b is _MISSING else b)
    if not _same(a, b):
        out[path or "$"] = [a, b]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


# -- helpers --------------------------------------------------------------------


def _start_linked(
    engine: Engine,
    original: Run,
    input: Any,
    link: str,
    lineage: dict[str, Any],
    idempotency_key: str | None,
    timeout: int | str | None,
    observer: Observer | None,
    wait: bool,
    journal: Callable[[str], tuple[list[StepRecord], list[EventRow]]] | None = None,
) -> dict[str, Any]:
    """Start a new run of the original's workflow (same env, context and timeout unless given), drive it.

    `journal` seeds the new run's journal in the transaction that creates it: a crash can
    never leave the run without the rows it must not re-execute."""
    run, created = engine.start(
        original.tag,
        input,
        env=original.env,
        context=original.context or None,
        idempotency_key=idempotency_key,
        timeout=timeout if timeout is not None else original.options.get("timeout_ms"),
        lineage=lineage,
        links={link: original.id},
        journal=journal,
    )
    if not created:  # the idempotency key named an existing run
        return _linked(engine.result(run.id), engine.get_run(run.id))
    return _linked(engine.drive(run.id, wait=wait, observer=observer), run)


def _linked(result: dict[str, Any], run: Run) -> dict[str, Any]:
    for key in ("replayed_from", "restarted_from"):
        if getattr(run, key):
            result[key] = getattr(run, key)
    return result


def _tags(rows: list[StepRecord], kind: OpKind) -> str:
    return ", ".join(r.tag for r in rows if r.kind == kind) or "none"


def _json_type(value: Any) -> str:
    names = {str: "string", bool: "boolean", int: "number", float: "number", list: "list"}
    return names.get(type(value), type(value).__name__)
