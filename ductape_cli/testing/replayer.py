"""Check today's code against recorded runs: re-execute a handler over a journal, report the first mismatch.

`ductape history ID --json` exports a run (its events and its journal); feed
that file, or a run id, to `replay_history`. The handler runs in a scratch
in-memory store in replay-only mode: every durable operation must be found in
the journal, nothing is executed or written, and the run being checked is
never touched.

What counts as a mismatch, in the terms of a run still in flight:

* **diverged**: at some position the code now reaches a different operation
  (kind or tag) than the journal holds; such a run would fail with a
  non-determinism error.
* **missing**: the code ends (returns or raises) before reaching operations
  the journal holds.
* **raised**: the recorded run completed, but the code now raises.

Code that goes on past the end of the journal (a step added at the end, a
wait the recorded run had not finished) is compatible: the report says where
it `extends` the journal, and `ok` stays true.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ductape_cli.engine import same_core
from ductape_cli.engine.children import ChildCall, ChildRunner
from ductape_cli.engine.context import Context
from ductape_cli.engine.execution import Execution
from ductape_cli.engine.history import export_run
from ductape_cli.engine.journal import Frontier, Journal
from ductape_cli.engine.rollback import Rollback
from ductape_cli.errors import InvalidInput, NonDeterminismError, WorkflowInterrupt
from ductape_cli.models import OpKind, Run, RunStatus, StepRecord, StepStatus

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine


# -- export ------------------------------------------------------------------------------


def load_history(engine: Engine, source: Any) -> dict[str, Any]:
    """An exported history from a dict, a JSON file, JSON text, or a run id in `engine`'s store."""
    if isinstance(source, Mapping):
        data = dict(source)
    elif isinstance(source, str) and source.lstrip().startswith("{"):
        data = json.loads(source)
    elif isinstance(source, Path) or (
        isinstance(source, str) and (source.endswith(".json") or _is_file(source))
    ):
        try:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidInput(f"cannot read history {source}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise InvalidInput(f"history {source} is not valid JSON: {exc}") from None
    elif isinstance(source, str):
        data = export_run(engine, source)
    else:
        raise InvalidInput(
            f"replay_history takes a run id, a JSON file or an exported dict, got {type(source).__name__}"
        )
    if "journal" not in data or "workflow_tag" not in data:
        raise InvalidInput(
            "this history has no journal; export it with `ductape history ID --json` "
            "(the export carries workflow_tag, input and journal)"
        )
    return data


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except OSError:
        return False


# -- the report ----------------------------------------------------------------------------


@dataclasses.dataclass
class ReplayReport:
    """The outcome of `replay_history`; `ok` is false when a run like this one would break."""

    ok: bool
    workflow_id: str
    workflow_tag: str
    recorded_status: str
    journal_length: int
    replayed: int
    outcome: str
    mismatch: dict[str, Any] | None = None
    extends: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def assert_ok(self) -> None:
        """Raise AssertionError naming the first mismatch."""
        if not self.ok:
            assert self.mismatch is not None
            raise AssertionError(
                f"replay of {self.workflow_id} ({self.workflow_tag}): {self.mismatch['message']}"
            )

    def __str__(self) -> str:
        head = f"{self.workflow_id} ({self.workflow_tag}, {self.recorded_status})"
        if self.mismatch:
            return f"✗ {head}: {self.mismatch['message']}"
        tail = (
            f"; the code goes on with {self.extends['kind']} {self.extends['tag']!r}"
            if self.extends
            else ""
        )
        return f"✓ {head}: {self.replayed}/{self.journal_length} positions replayed, {self.outcome}{tail}"


# -- replaying ---------------------------------------------------------------------------------


def _op(kind: Any, tag: str, source: str | None) -> dict[str, Any]:
    return {"kind": str(kind), "tag": tag, "source": source}


def _where(site: tuple[str, int]) -> str:
    return f"{site[0]}:{site[1]}"


class ReplayJournal(Journal):
    """A journal that only reads: a new operation stops the replay (`Frontier`); where the code
    first goes past the journal (`extends`) or leaves it (`mismatch`) is noted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frontier_mode = True
        self.deadline = None
        self.mismatch: dict[str, Any] | None = None
        self.extends: dict[str, Any] | None = None

    def next_op(
        self, kind: OpKind, tag: str, site: tuple[str, int]
    ) -> tuple[int, StepRecord | None]:
        seq = self.seq
        record = self.records.get(seq)
        if record is None and self.extends is None:
            self.extends = {"position": seq, **_op(kind, tag, _where(site))}
        try:
            return super().next_op(kind, tag, site)
        except NonDeterminismError as exc:
            if self.mismatch is None and record is not None:
                self.mismatch = {
                    "position": seq,
                    "reason": "diverged",
                    "expected": _op(record.kind, record.tag, record.source),
                    "found": _op(kind, tag, _where(site)),
                    "message": exc.message,
                }
            raise

    def patched(self, change_id: str, site: tuple[str, int]) -> bool:
        if self.seq > self.max_seq and self.extends is None:
            self.extends = {"position": self.seq, **_op(OpKind.PATCH, change_id, _where(site))}
        return super().patched(change_id, site)


class ReplayChildren(ChildRunner):
    """Children as recorded: never started or driven while checking."""

    async def run(self, call: ChildCall, seq: int, record: StepRecord | None) -> Any:
        if record is None or record.status not in (StepStatus.COMPLETED, StepStatus.FAILED):
            raise Frontier()  # the recorded run was still waiting for this child
        return await super().run(call, seq, record)


class ReplayRollback(Rollback):
    """A manual rollback as recorded: compensations never run while checking."""

    async def trigger(self, reason: str, site: tuple[str, int]) -> dict[str, Any]:
        _, record = self.journal.next_op(OpKind.ROLLBACK, "rollback", site)
        if record is None or record.status != StepStatus.COMPLETED:
            raise Frontier()
        self.manual = record.output
        return record.output


class ReplayExecution(Execution):
    """An execution that only reads the journal: new operations stop it (`Frontier`), nothing runs."""

    journal_type = ReplayJournal
    child_runner = ReplayChildren
    rollback_runner = ReplayRollback

    async def replay(self) -> tuple[ReplayJournal, str, Any]:
        """Run the handler over the journal: ("returned", output), ("raised", exc) or ("stopped", None)."""
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        journal = self.journal
        assert isinstance(journal, ReplayJournal)
        try:
            output = await self.call_handler(Context(self))
        except Frontier:
            return journal, "stopped", None
        except (Exception, WorkflowInterrupt) as exc:  # noqa: BLE001 - the handler's end, reported
            return journal, "raised", exc
        return journal, "returned", output


def replay_history(engine: Engine, source: Any) -> ReplayReport:
    """Re-execute the current code of a recorded run's workflow against its journal."""
    from ductape_cli.discovery import Registry
    from ductape_cli.engine.engine import Engine as EngineClass
    from ductape_cli.testing.clock import VirtualClock

    data = load_history(engine, source)
    tag = data["workflow_tag"]
    definition = engine.definition(tag)
    run_id = data.get("workflow_id") or "wf_replay"
    records = [_record(run_id, row) for row in data["journal"]]
    started = _started(data)
    scratch = EngineClass(
        engine.config,
        store=":memory:",
        clock=VirtualClock(started.get("timestamp")),
        registry=Registry(folder=engine.config.workflows_dir, by_tag={tag: definition}),
    )
    run = Run(
        id=run_id,
        tag=tag,
        status=RunStatus.RUNNING,
        input=data.get("input", started.get("input") or {}),
        env=data.get("env") or started.get("env") or engine.config.default_env,
        context=started.get("context") or {},
        owner=scratch.owner,
        created_at=scratch.clock.now(),
        started_at=scratch.clock.now(),
    )
    loop = asyncio.new_event_loop()
    try:
        scratch.store.create_run(run, [], records)
        journal, outcome, value = loop.run_until_complete(
            ReplayExecution(scratch, run, definition).replay()
        )
    finally:
        same_core.let_go()
        loop.close()
        scratch.close()
    return _report(data, records, journal, outcome, value)


def _record(run_id: str, row: Mapping[str, Any]) -> StepRecord:
    names = {f.name for f in dataclasses.fields(StepRecord)} - {"run_id"}
    values = {k: v for k, v in row.items() if k in names}
    values["kind"], values["status"] = OpKind(values["kind"]), StepStatus(values["status"])
    values["options"] = values.get("options") or {}
    return StepRecord(run_id=run_id, **values)


def _started(data: Mapping[str, Any]) -> dict[str, Any]:
    """Input, env and start time from the history's workflow_started event, when it has one."""
    for event in data.get("events") or ():
        if event.get("type") == "workflow_started":
            found = dict(event.get("data") or {})
            if event.get("timestamp") is not None:
                found["timestamp"] = event["timestamp"] / 1000
            return found
    return {}


def _report(
    data: Mapping[str, Any],
    records: list[StepRecord],
    journal: ReplayJournal,
    outcome: str,
    value: Any,
) -> ReplayReport:
    recorded = str(data.get("status") or "unknown")
    mismatch = journal.mismatch
    consumed = min(journal.seq, len(records))
    missing = journal.unreached() if mismatch is None and outcome != "stopped" else None
    if missing is not None:
        record = missing
        how = "returns" if outcome == "returned" else f"raises {type(value).__name__}: {value}"
        mismatch = {
            "position": record.seq,
            "reason": "missing",
            "expected": _op(record.kind, record.tag, record.source),
            "found": None,
            "message": f"the code now {how} before position {record.seq}, where the journal holds "
            f"{record.kind} {record.tag!r} ({record.source or 'unknown site'})",
        }
    elif mismatch is None and outcome == "raised" and recorded == RunStatus.COMPLETED:
        mismatch = {
            "position": journal.seq,
            "reason": "raised",
            "expected": None,
            "found": None,
            "message": f"the recorded run completed, but the code now raises {type(value).__name__}: {value}",
        }
    if mismatch is not None:
        consumed = mismatch["position"]
    described = {
        "returned": "the handler returned",
        "raised": f"the handler raised {type(value).__name__}",
        "stopped": "the replay reached where the recorded run stopped",
    }[outcome]
    return ReplayReport(
        ok=mismatch is None,
        workflow_id=str(data.get("workflow_id")),
        workflow_tag=str(data["workflow_tag"]),
        recorded_status=recorded,
        journal_length=len(records),
        replayed=consumed,
        outcome=described,
        mismatch=mismatch,
        extends=journal.extends if mismatch is None else None,
    )
