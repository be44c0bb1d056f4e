"""Child workflows: start a linked run, wait for it durably, apply the parent-close policy.

The child is a run of its own (id chosen by the parent, so starting it is
idempotent across replays). The parent's process executes it inline on a
helper thread when it can; if the child has to wait, the parent suspends too,
and the child's end wakes the parent.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from ductape_cli.durations import parse_duration
from ductape_cli.engine.journal import Journal, Suspend
from ductape_cli.errors import ChildWorkflowFailed, DuctapeError, StepError
from ductape_cli.models import EventType, Lifecycle, OpKind, Run, StepRecord, StepStatus

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine

POLICIES = ("terminate", "abandon", "request_cancel")


class ChildCall:
    """A not-yet-started child workflow call; await it, or hand it to `ctx.parallel`."""

    def __init__(
        self,
        runner: ChildRunner,
        child_id: str,
        tag: str,
        input: Any,
        options: dict[str, Any],
        site: tuple[str, int],
    ) -> None:
        self.runner = runner
        self.child_id = child_id
        self.tag = tag
        self.input = input
        self.options = options
        self.site = site

    def prepare(self) -> Any:
        seq, record = self.runner.journal.next_op(OpKind.CHILD, self.child_id, self.site)
        return lambda: self.runner.run(self, seq, record)

    def __await__(self) -> Any:
        return self.prepare()().__await__()


class ChildRunner:
    """Runs `ctx.workflow`: start the child run, drive it here when it can, wait for its end."""

    def __init__(self, journal: Journal, engine: Engine, inline_wait: float) -> None:
        self.journal = journal
        self.engine = engine  # starts and drives the children
        self.clock = journal.clock
        self.store = journal.store
        self.parent = journal.run  # the run whose children these are
        self.inline_wait = inline_wait

    def call(
        self, child_id: str, tag: str, input: Any, options: dict[str, Any], site: tuple[str, int]
    ) -> ChildCall:
        if not isinstance(child_id, str) or not child_id:
            raise StepError(f"ctx.workflow at {site[0]}:{site[1]} needs a child workflow id")
        unknown = set(options) - {"timeout", "retries", "parent_close_policy"}
        if unknown:
            raise StepError(
                f"ctx.workflow({child_id!r}): unknown option {sorted(unknown)[0]!r} (known: timeout, retries, parent_close_policy)"
            )
        policy = options.get("parent_close_policy", "terminate")
        if policy not in POLICIES:
            raise StepError(
                f"ctx.workflow({child_id!r}): parent_close_policy must be one of {', '.join(POLICIES)}"
            )
        return ChildCall(self, child_id, tag, input, options, site)

    async def run(self, call: ChildCall, seq: int, record: StepRecord | None) -> Any:
        if record is not None and record.status == StepStatus.COMPLETED:
            return record.output
        if record is not None and record.status == StepStatus.FAILED:
            error = record.error or {}
            raise ChildWorkflowFailed(
                error.get("child_id", call.child_id), error.get("status", "failed"), error
            )
        retries = int(call.options.get("retries") or 0)
        attempt = (record.input or {}).get("attempt", 0) if record is not None else 0
        base_id = scoped_child_id(self.parent, call.child_id)
        if record is None:
            self.journal.notify(EventType.CHILD_STARTED, child_id=base_id, tag=call.tag)
            current_id = self._start_child(call, base_id)
            now = self.clock.now()
            record = StepRecord(
                self.parent.id,
                seq,
                OpKind.CHILD,
                call.child_id,
                StepStatus.WAITING,
                started_at=now,
                input={
                    "tag": call.tag,
                    "current": current_id,
                    "attempt": 0,
                    "policy": call.options.get("parent_close_policy", "terminate"),
                },
                source=f"{call.site[0]}:{call.site[1]}",
            )
            self.journal.commit(
                record,
                self.journal.take_events(
                    (
                        now,
                        EventType.CHILD_STARTED,
                        None,
                        {"child_id": current_id, "workflow_tag": call.tag},
                    )
                ),
            )
        while True:
            current_id = record.input["current"]
            result = await self._drive_child(current_id)
            status = result["status"]
            if status in ("running", "pending"):
                self.journal.check_waiting()
                raise Suspend(None, {"kind": "child", "child_id": current_id, "seq": seq})
            now = self.clock.now()
            if status == "completed":
                fields = {"status": "completed", "output": result["output"]}
                self._record_end(seq, current_id, status, now, fields)
                record.status, record.output = StepStatus.COMPLETED, result["output"]
                self._ended(call, record, current_id, status)
                return result["output"]
            if attempt < retries:
                attempt += 1
                next_id = f"{base_id}-retry-{attempt}"
                self._ended(call, record, current_id, status)
                self.journal.notify(EventType.CHILD_STARTED, child_id=next_id, tag=call.tag)
                self._start_child(call, next_id, restarted_from=current_id)
                record.input = {**record.input, "current": next_id, "attempt": attempt}
                self.store.update_op(
                    self.parent.id,
                    seq,
                    {"input": record.input},
                    self.journal.take_events(
                        (
                            now,
                            EventType.CHILD_STARTED,
                            None,
                            {"child_id": next_id, "retry_of": current_id},
                        )
                    ),
                )
                continue
            error = {**(result.get("error") or {}), "child_id": current_id, "status": status}
            self._record_end(seq, current_id, status, now, {"status": "failed", "error": error})
            record.status, record.error = StepStatus.FAILED, error
            self._ended(call, record, current_id, status)
            raise ChildWorkflowFailed(current_id, status, error)

    def _record_end(
        self, seq: int, child_id: str, status: str, now: float, fields: dict[str, Any]
    ) -> None:
        """The child's end on the parent's journal row: completed with its output, or failed."""
        self.store.update_op(
            self.parent.id,
            seq,
            {**fields, "ended_at": now},
            self.journal.take_events(
                (now, EventType.CHILD_COMPLETED, None, {"child_id": child_id, "status": status})
            ),
        )

    def _ended(self, call: ChildCall, record: StepRecord, child_id: str, status: str) -> None:
        self.journal.notify(
            Lifecycle.CHILD_ENDED,
            child_id=child_id,
            tag=call.tag,
            status=status,
            started_at=record.started_at,
        )

    def _start_child(
        self, call: ChildCall, child_id: str, restarted_from: str | None = None
    ) -> str:
        existing = self.store.get_run(child_id)
        if existing is not None:
            if existing.parent_id != self.parent.id:
                raise StepError(f"child workflow id {child_id!r} is already used by another run")
            return child_id
        lineage: dict[str, Any] = {
            "parent_close_policy": call.options.get("parent_close_policy", "terminate")
        }
        scope = child_scope(self.parent)
        if scope is not None:
            lineage["child_scope"] = scope
            replaced = self._replaced_child(call.child_id)
            if replaced is not None:
                lineage["replaces_child"] = replaced
        try:
            timeout = parse_duration(call.options.get("timeout"), what="child timeout")
            self.engine.start(
                call.tag,
                call.input,
                env=self.parent.env,
                workflow_id=child_id,
                timeout=timeout,
                detach=True,
                parent_id=self.parent.id,
                lineage=lineage,
                links={"restarted_from": restarted_from} if restarted_from else None,
            )
        except DuctapeError as exc:
            raise StepError(
                f"cannot start child workflow {child_id!r} ({call.tag}): {exc.message}"
            ) from None
        return child_id

    def _replaced_child(self, given_id: str) -> str | None:
        """The child the run this one replays or restarts started for the same `ctx.workflow` call."""
        original_id = self.parent.replayed_from or self.parent.restarted_from
        original = self.store.get_run(original_id) if original_id else None
        if original is None:
            return None
        child = self.store.get_run(scoped_child_id(original, given_id))
        return child.id if child is not None and child.parent_id == original.id else None

    async def _drive_child(self, child_id: str) -> dict[str, Any]:
        """Execute the child on a helper thread (its own store connection and event loop)."""
        engine = self.engine
        inline = self.inline_wait
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: engine.drive(child_id, inline_wait=inline)
        )


def child_scope(run: Run) -> str | None:
    """The run that scopes this run's child ids: itself when it is a replay or restart, the
    scope it inherited when it is a child of one, None for an ordinary run."""
    if run.replayed_from or run.restarted_from:
        return run.id
    scope = (run.lineage or {}).get("child_scope")
    return scope if isinstance(scope, str) else None


def scoped_child_id(run: Run, given_id: str) -> str:
    """The id of the child `ctx.workflow(given_id, ...)` starts in `run`.

    An ordinary run uses the id as given, so starting the child is idempotent across replays of
    its journal and resumes. A replay or restart is a new run: its children (and theirs) get
    `<given id>@<replay or restart run id>`, so they never collide with the original's."""
    scope = child_scope(run)
    return given_id if scope is None else f"{given_id}@{scope}"


def apply_close_policies(engine: Engine, parent_id: str) -> None:
    """When a parent ends, act on its unfinished children as each one's policy says."""
    children = [
        c
        for c in engine.store.list_runs(parent_id=parent_id, limit=10_000)
        if not c.status.terminal
    ]
    if not children:
        return

    def work() -> None:
        for child in children:
            policy = (child.lineage or {}).get("parent_close_policy", "terminate")
            if policy == "abandon":
                continue
            reason = f"parent {parent_id} closed ({policy})"
            try:
                if policy == "request_cancel":
                    engine.store.request_cancel(child.id, reason, engine.clock.now())
                else:
                    engine.cancel(child.id, reason, wait_seconds=5.0)
            except DuctapeError:
                continue  # it ended meanwhile

    # The caller is inside the parent's event loop; children are driven on their own thread.
    thread = threading.Thread(target=work, name="ductape-close-policy")
    thread.start()
    thread.join()
