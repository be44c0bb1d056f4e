"""The engine: the Python API the CLI (and users) call to start, drive and inspect runs.

An `Engine` holds one project's configuration, a store connection per thread,
an event loop per thread, and the lease keeper. It is not a global: make as
many as you like (tests make one per temporary project).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ductape_cli.config import ProjectConfig, load_config
from ductape_cli.definition import WorkflowDefinition
from ductape_cli.discovery import Registry, discover, load_one, trusted_module
from ductape_cli.durations import parse_duration
from ductape_cli.engine.clock import SystemClock
from ductape_cli.engine.execution import Execution, Observer, Outcome
from ductape_cli.engine.fencing import LostOwnership
from ductape_cli.engine.leases import (
    HOST,
    LeaseKeeper,
    new_owner_id,
    owner_is_dead,
    owner_pid,
    pid_alive,
)
from ductape_cli.engine.results import completed_step_tags, run_status, step_view, workflow_result
from ductape_cli.errors import DefinitionError, InvalidInput, InvalidState, RunNotFound
from ductape_cli.jsonin import MAX_DEPTH, nesting_depth
from ductape_cli.models import EventType, OpKind, Run, RunStatus, StepRecord
from ductape_cli.store import SqliteStore, dumps, open_store
from ductape_cli.store.sqlite import new_lease

MIN_ID_FRAGMENT = 6  # a run id may be shortened to a unique prefix or suffix this long
AMBIGUOUS_SHOWN = 4
INLINE_WAIT = 5.0  # `run` waits in-process for sleeps up to this long, then returns "running"
# A run whose workflow no worker can load is retried after 1, 2, 4 ... s (at most 5 min), then failed.
LOAD_RETRY_BASE = 1.0
LOAD_RETRY_CAP = 300.0
LOAD_ATTEMPTS = 8


def uncompiled_schema(wf: WorkflowDefinition, source_hash: str, reason: str) -> dict[str, Any]:
    """A definition record for a workflow the recorder could not walk: options only, no steps."""
    import hashlib

    schema: dict[str, Any] = {"tag": wf.tag, "name": wf.name, "options": wf.options_summary(), "steps": [], "recording_error": reason}
    schema["version"] = hashlib.sha256(dumps(schema).encode()).hexdigest()[:16]
    schema["source_hash"] = source_hash
    return schema


def new_run_id() -> str:
    """Time-ordered ids (ms, then randomness): new runs land at the end of the runs index, not in random pages."""
    return f"wf_{int(time.time() * 1000):011x}{secrets.token_hex(3)}"


class Engine:
    def __init__(
        self,
        config: ProjectConfig | None = None,
        *,
        store: str | None = None,
        clock: Any = None,
        registry: Registry | None = None,
    ) -> None:
        self.config = config or load_config()
        self.store_path = store or self.config.store_path
        self.clock = clock or SystemClock()
        self.owner = new_owner_id()
        self.lease_ttl = self.config.lease_ttl
        self.leases = LeaseKeeper(self.open_store, self.clock, self.lease_ttl)
        self.notices: list[str] = []
        # Called as (what the user typed, the run id it stood for) when a shortened id is resolved.
        self.on_resolved: Callable[[str, str], None] | None = None
        self._resolved: set[tuple[str, str]] = set()
        self.shutting_down = False
        # tag -> replacement fn: a dict, or the testing kit's mock table (anything with get(tag, default))
        self.step_overrides: Any = {}
        self._local = threading.local()
        self._registry = registry
        self._full_registry = registry is not None
        self._conditions: dict[tuple[str, str | None], dict[str, str]] = {}
        self._versions: dict[str, tuple[WorkflowDefinition, str]] = {}
        self._memory_store: SqliteStore | None = None

    # -- resources ----------------------------------------------------------------

    def open_store(self) -> SqliteStore:
        if self.store_path == ":memory:":
            # One shared connection: an in-memory database exists only inside it.
            if self._memory_store is None:
                self._memory_store = open_store(":memory:", namespace=self.config.store_namespace)
            return self._memory_store
        return open_store(self.store_path, durability=self.config.durability, namespace=self.config.store_namespace)

    def has_store(self) -> bool:
        """Whether the store exists yet; reads and bad input must not create it."""
        if self.store_path == ":memory:" or getattr(self._local, "store", None) is not None:
            return True
        return Path(self.store_path).exists()

    @property
    def store(self) -> SqliteStore:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = self.open_store()
        return store  # type: ignore[no-any-return]

    def _loop(self) -> asyncio.AbstractEventLoop:
        loop = getattr(self._local, "loop", None)
        if loop is None or loop.is_closed():
            loop = self._local.loop = asyncio.new_event_loop()
        return loop  # type: ignore[no-any-return]

    def close(self) -> None:
        self.leases.stop()
        store = getattr(self._local, "store", None)
        if store is not None and store is not self._memory_store:
            store.close()
            self._local.store = None

    # -- workflows --------------------------------------------------------------------

    def registry(self) -> Registry:
        """Every workflow of the project (imports all modules once)."""
        if self._registry is None or not self._full_registry:
            registry = discover(self.config.workflows_dir)
            if self._registry is not None:
                for tag, wf in self._registry.by_tag.items():
                    registry.by_tag.setdefault(tag, wf)
            self._registry, self._full_registry = registry, True
        return self._registry

    def definition(self, tag: str) -> WorkflowDefinition:
        """The workflow `tag`; imports only its module when the store knows where it lives."""
        if self._registry is not None and tag in self._registry.by_tag:
            return self._registry.by_tag[tag]
        if not self._full_registry and self.has_store():
            stored = self.store.latest_definition(tag)
            path = trusted_module(self.config.workflows_dir, stored.get("source_path") if stored else None)
            if path is not None:
                try:
                    registry = load_one(self.config.workflows_dir, path)
                except Exception:  # noqa: BLE001 - fall back to full discovery, which reports it properly
                    registry = None
                if registry is not None and tag in registry.by_tag:
                    self._registry = registry
                    return registry.by_tag[tag]
        return self.registry().get(tag)

    def register(self, definition: WorkflowDefinition) -> None:
        """Add a definition made in Python (not found by discovery), e.g. in tests."""
        if self._registry is None:
            self._registry = Registry(folder=self.config.workflows_dir)
        self._registry.by_tag[definition.tag] = definition

    def ensure_defined(self, wf: WorkflowDefinition) -> str:
        """The stored definition version for `wf`, compiling it first when missing or stale."""
        known = self._versions.get(wf.tag)
        if known is not None and known[0] is wf:
            return known[1]  # the code in memory cannot have changed since we checked
        version = self._define(wf)
        self._versions[wf.tag] = (wf, version)
        return version

    def _define(self, wf: WorkflowDefinition) -> str:
        from ductape_cli.definition import source_hash_of

        current_hash = source_hash_of(wf)
        stored = self.store.latest_definition(wf.tag)
        if stored and stored["schema"].get("source_hash") == current_hash:
            return str(stored["version"])
        from ductape_cli.compiler import compile_definition

        try:
            # Not strict: a handler that raises while recording keeps the steps recorded so far.
            schema = compile_definition(wf, current_hash, strict=False)
        except DefinitionError as exc:
            # A handler the recorder cannot walk still runs; it just has no compiled conditions.
            schema = uncompiled_schema(wf, current_hash, exc.message)
            self.notices.append(f"could not record {wf.tag} ({exc.message}); running it without a compiled schema")
        version = schema["version"]
        self.store.save_definition(wf.tag, version, wf.name, wf.source_file or "", schema)
        verb = "compiled" if stored is None else "recompiled (source changed)"
        self.notices.append(f"{verb} {wf.tag} → version {version[:12]}")
        return str(version)

    def conditions_for(self, run: Run) -> dict[str, str]:
        key = (run.tag, run.version)
        if key not in self._conditions:
            found: dict[str, str] = {}
            stored = self.store.get_definition(run.tag, run.version) if run.version else None
            for step in (stored or {}).get("schema", {}).get("steps", []):
                # An explicit condition travels with the step's own options; the compiled map
                # holds only what recording implied (scenarios, branch overrides).
                implied = step.get("implied_condition") if step.get("explicit_condition") else step.get("condition")
                if implied:
                    found[step["tag"]] = implied
            self._conditions[key] = found
        return self._conditions[key]

    def components_for(self, execution: Execution) -> Any:
        from ductape_cli.components import runtime_for

        return runtime_for(self, execution)

    # -- starting and driving runs ---------------------------------------------------

    def start(
        self,
        tag: str,
        input: Any = None,
        *,
        env: str | None = None,
        workflow_id: str | None = None,
        idempotency_key: str | None = None,
        timeout: int | str | None = None,
        context: dict[str, Any] | None = None,
        detach: bool = False,
        parent_id: str | None = None,
        schedule_id: str | None = None,
        lineage: dict[str, Any] | None = None,
        links: dict[str, str] | None = None,
    ) -> tuple[Run, bool]:
        """Create a run (owned by this engine unless `detach`). Returns ``(run, created)``."""
        wf = self.definition(tag)
        env = self.config.check_env(env or self.config.default_env)
        if wf.envs and env not in wf.envs:
            raise InvalidInput(f"workflow {tag} is not enabled in env {env!r} (envs: {', '.join(wf.envs)})")
        input = {} if input is None else input
        try:
            input = json.loads(dumps(input))
        except (TypeError, ValueError, RecursionError):
            raise InvalidInput(
                f"input must be JSON-serialisable (no NaN or Infinity, nesting at most {MAX_DEPTH}), got {type(input).__name__}"
            ) from None
        if nesting_depth(input) > MAX_DEPTH:
            raise InvalidInput(f"input nests deeper than {MAX_DEPTH} levels")
        input = wf.validate_input(input)
        timeout_ms = parse_duration(timeout, what="timeout") if timeout is not None else wf.timeout_ms
        if workflow_id is not None and (not workflow_id or len(workflow_id) > 200 or any(c.isspace() for c in workflow_id)):
            raise InvalidInput(f"invalid workflow id {workflow_id!r}: use 1-200 characters without spaces")
        version = self.ensure_defined(wf)
        now = self.clock.now()
        run = Run(
            id=workflow_id or new_run_id(), tag=tag, status=RunStatus.PENDING if detach else RunStatus.RUNNING,
            input=input, version=version, env=env, context=dict(context or {}), idempotency_key=idempotency_key,
            parent_id=parent_id, lineage=dict(lineage or {}), options={"timeout_ms": timeout_ms} if timeout_ms else {},
            created_at=now, started_at=None if detach else now,
            deadline=now + timeout_ms / 1000 if timeout_ms else None,
            owner=None if detach else self.owner, lease_expires_at=None if detach else now + self.lease_ttl,
            lease=None if detach else new_lease(),
            ready_at=now, schedule_id=schedule_id,
        )  # fmt: skip
        for field_name, value in (links or {}).items():
            setattr(run, field_name, value)
        data: dict[str, Any] = {"env": env, "version": version}  # the input is stored once, on the run
        if context:
            data["context"] = context
        for key in ("parent_id", "replayed_from", "restarted_from", "schedule_id"):
            if getattr(run, key):
                data[key] = getattr(run, key)
        try:
            return self.store.create_run(run, [(now, EventType.WORKFLOW_STARTED, None, data)])
        except KeyError:
            raise InvalidInput(f"a run with id {run.id!r} already exists; choose another --workflow-id") from None

    def run(self, tag: str, input: Any = None, *, wait: bool = False, observer: Observer | None = None, **options: Any) -> dict[str, Any]:
        """Start `tag` and drive it until it ends or waits (the Python form of `ductape run`)."""
        run, created = self.start(tag, input, **options)
        if options.get("detach"):
            return self.result(run.id)
        if not created:
            return self.result(run.id)
        return self.drive(run.id, wait=wait, observer=observer, started=run)

    def drive(
        self, run_id: str, *, wait: bool = False, observer: Observer | None = None, inline_wait: float = INLINE_WAIT,
        dead_owners: tuple[str, ...] = (), started: Run | None = None,
    ) -> dict[str, Any]:
        """Execute a run in this process until it ends, or until it waits longer than `inline_wait`.

        `started` is a run this engine has just created and owns: its first execution
        needs no claim and no journal read (the hot path of `run`).
        """
        fresh = started
        while True:
            journal: dict[int, StepRecord] | None = None
            run: Run | None
            if fresh is not None:
                run, journal, fresh = fresh, {}, None
            else:
                run = self.store.claim_run(run_id, self.owner, self.clock.now(), self.lease_ttl, dead_owners)
            if run is None:
                current = self.get_run(run_id)
                if current.status.terminal or not wait:
                    return self.result(run_id)
                self.clock.block(0.2)
                continue
            outcome, completed = self.execute(run, observer=observer, inline_wait=inline_wait, journal=journal)
            if outcome.lost:
                return self.result(run_id)
            if not outcome.suspended:
                run.status = outcome.status
                return workflow_result(self._refresh(run, outcome), completed)
            ready_at = outcome.ready_at
            now = self.clock.now()
            if ready_at is not None and ready_at - now <= inline_wait:
                self.clock.block(ready_at - now)
                continue
            if not wait:
                return self.result(run_id)
            self._wait_until_ready(run_id)

    def execute(
        self, run: Run, *, observer: Observer | None = None, inline_wait: float = INLINE_WAIT,
        journal: dict[int, StepRecord] | None = None,
    ) -> tuple[Outcome, list[str]]:
        """One execution of a claimed run on this thread's event loop (`journal`: already known, e.g. empty)."""
        wf = self.definition(run.tag)
        if run.load_attempts and run.lease:
            self.store.set_run_fields(run.id, {"load_error": None, "load_attempts": 0}, lease=run.lease)
            run.load_error, run.load_attempts = None, 0
        execution = Execution(self, run, wf, inline_wait=inline_wait, observer=observer,
                              conditions=self.conditions_for(run), journal=journal)  # fmt: skip
        if execution.cancel_reason is not None and not execution.journal:
            try:
                outcome = execution._finish(RunStatus.CANCELLED, error={"message": f"cancelled: {execution.cancel_reason}", "step": None, "code": "CANCELLED"})
            except LostOwnership:
                outcome = Outcome(RunStatus.RUNNING, lost=True)
            return outcome, []
        outcome = self._loop().run_until_complete(execution.execute())
        return outcome, execution.completed_steps

    def defer_unloadable(self, run: Run, message: str) -> float | None:
        """A claimed run whose workflow cannot be loaded: retry later with backoff, or fail it for good.

        Returns when it is due again, or None once it was marked failed
        (`WORKFLOW_NOT_LOADABLE`; `ductape resume` continues it when the code is back).
        """
        now = self.clock.now()
        tries = run.load_attempts + 1
        retry_at = None if tries >= LOAD_ATTEMPTS else now + min(LOAD_RETRY_BASE * 2 ** (tries - 1), LOAD_RETRY_CAP)
        data: dict[str, Any]
        if retry_at is None:
            error = {"message": message, "step": None, "code": "WORKFLOW_NOT_LOADABLE"}
            data = {"error": error}
        else:
            detail = {"attempt": tries, "of": LOAD_ATTEMPTS, "retry_at": retry_at}
            data = {"level": "error", "message": f"cannot load workflow: {message}", "data": detail}
        event_type = EventType.WORKFLOW_FAILED if retry_at is None else EventType.LOG
        self.store.defer_unloadable(run.id, run.lease or "", message, now, retry_at, [(now, event_type, None, data)])
        return retry_at

    def _refresh(self, run: Run, outcome: Outcome) -> Run:
        run.status, run.output, run.error = outcome.status, outcome.output, outcome.error
        run.failed_step, run.rollback_result = outcome.failed_step, outcome.rollback_result
        if run.ended_at is None:
            run.ended_at = self.clock.now()
        return run

    def _wait_until_ready(self, run_id: str) -> None:
        """Block until the run is due again (timer, signal, cancel) or has ended elsewhere."""
        while True:
            run = self.get_run(run_id)
            now = self.clock.now()
            if run.status.terminal or (run.ready_at is not None and run.ready_at <= now + 0.05):
                if run.ready_at is not None and run.ready_at > now:
                    self.clock.block(run.ready_at - now)
                return
            delay = 0.25 if run.ready_at is None else min(0.25, max(0.0, run.ready_at - now))
            self.clock.block(delay)

    # -- reading ---------------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        if not self.has_store():
            raise RunNotFound(f"no run with id {run_id!r} in {self.store_path} (no store yet)")
        run = self.store.get_run(run_id)
        if run is not None:
            return run
        matches = self.store.find_run_ids(run_id, limit=AMBIGUOUS_SHOWN + 1) if len(run_id) >= MIN_ID_FRAGMENT else []
        if len(matches) > 1:
            shown = ", ".join(matches[:AMBIGUOUS_SHOWN]) + (", ..." if len(matches) > AMBIGUOUS_SHOWN else "")
            raise InvalidInput(f"run id {run_id!r} is ambiguous: it matches {shown}; give more characters")
        run = self.store.get_run(matches[0]) if matches else None
        if run is None:
            raise RunNotFound(f"no run with id {run_id!r} in {self.store_path}")
        if self.on_resolved is not None and (run_id, run.id) not in self._resolved:
            self._resolved.add((run_id, run.id))
            self.on_resolved(run_id, run.id)
        return run

    def result(self, run_id: str) -> dict[str, Any]:
        run = self.get_run(run_id)
        return workflow_result(run, completed_step_tags(self.store.load_journal(run.id)))

    def status(self, run_id: str) -> dict[str, Any]:
        run = self.get_run(run_id)
        journal = self.store.load_journal(run.id)
        children = self.store.list_runs(parent_id=run.id, limit=1000, full=False)
        return run_status(run, journal, children, self._unreached_steps(run, journal))

    def _unreached_steps(self, run: Run, journal: dict[int, StepRecord]) -> list[dict[str, Any]]:
        """Compiled steps the run has not reached: `pending` while it runs, `skipped` (with why) once it ended."""
        if not run.version:
            return []
        stored = self.store.get_definition(run.tag, run.version)
        seen = {r.tag for r in journal.values()} | {run.current_step}
        unreached = []
        for step in (stored or {}).get("schema", {}).get("steps", []):
            if step.get("tag") in seen or step.get("dynamic"):
                continue
            if not run.status.terminal:
                unreached.append({"tag": step["tag"], "kind": "step", "status": "pending", "output": None, "error": None})
                continue
            reason = "not reached"
            if step.get("condition"):
                reason = f"not reached (condition {step['condition']})"
            elif run.status != RunStatus.COMPLETED:
                reason = f"not reached (run {run.status})"
            unreached.append({"tag": step["tag"], "kind": "step", "status": "skipped", "reason": reason, "output": None, "error": None})
        return unreached

    def list_runs(self, *, full: bool = False, **filters: Any) -> list[Run]:
        """Runs newest first; summaries (no input, output, error, state, context) unless `full`."""
        return self.store.list_runs(full=full, **filters) if self.has_store() else []

    def history(self, run_id: str, *, types: list[str] | None = None) -> list[dict[str, Any]]:
        """Every event of a run in time order (completed steps derived from the journal)."""
        from ductape_cli.engine import history

        run = self.get_run(run_id)
        events = self.store.events(run.id, types=history.store_types(types))
        for event in events:
            if event.type == EventType.WORKFLOW_STARTED and "input" not in event.data:
                event.data = {"input": run.input, **event.data}
        return history.merge(events, self.store.load_journal(run.id).values(), types)

    def step_detail(self, run_id: str, tag: str) -> dict[str, Any]:
        run = self.get_run(run_id)
        journal = self.store.load_journal(run.id)
        for record in journal.values():
            if record.tag == tag and record.kind == OpKind.STEP:
                detail = step_view(record)
                attempts = [
                    {"attempt": a.attempt, "started_at": a.started_at, "duration": a.duration_ms, "error": a.error}
                    for a in self.store.attempts(run.id, record.seq)
                ]
                if record.status in ("completed", "rolled_back") and len(attempts) < record.attempts:
                    attempts.append({"attempt": record.attempts, "started_at": None, "duration": None, "error": None})
                detail.update({"workflow_id": run.id, "input": record.input, "attempt_log": attempts})
                return detail
        known = ", ".join(r.tag for r in journal.values() if r.kind == OpKind.STEP) or "none"
        raise InvalidInput(f"run {run.id} has no step {tag!r} (steps: {known})")

    # -- control ---------------------------------------------------------------------

    def resume(self, run_id: str, *, observer: Observer | None = None, wait: bool = False) -> dict[str, Any]:
        """Continue an unfinished run from its journal (e.g. after its process died)."""
        run = self.get_run(run_id)
        if run.status.terminal:
            raise InvalidState(f"run {run.id} already {run.status}; nothing to resume")
        dead: tuple[str, ...] = ()
        now = self.clock.now()
        if run.owner and run.owner != self.owner and (run.lease_expires_at or 0) > now:
            if owner_is_dead(run.owner):
                dead = (run.owner,)
            else:
                host, pid = owner_pid(run.owner)
                if host == HOST and pid is not None and pid_alive(pid):
                    raise InvalidState(f"run {run.id} is being executed by live process {pid} on this host")
                left = int((run.lease_expires_at or now) - now)
                raise InvalidState(f"run {run.id} is owned by {run.owner}; its lease expires in {left}s")
        self.store.append_events(run.id, [(now, EventType.WORKFLOW_RESUMED, None, {"reason": "resume", "previous_owner": run.owner})])
        return self.drive(run.id, wait=wait, observer=observer, dead_owners=dead)

    def signal(self, run_id: str, name: str, data: Any = None, *, continue_inline: bool = True, observer: Observer | None = None) -> dict[str, Any]:
        """Deliver a signal; with no live owner, continue the run here until it ends or waits again."""
        run = self.get_run(run_id)
        if run.status.terminal:
            raise InvalidState(f"run {run.id} already {run.status}; signal {name!r} refused")
        if name.startswith("hook:"):
            raise InvalidInput("signal names starting with 'hook:' are reserved; use `ductape hook TOKEN`")
        self.definition(run.tag).validate_signal(name, data)
        return self._deliver(run, name, data, continue_inline, observer)

    def _deliver(self, run: Run, name: str, data: Any, continue_inline: bool, observer: Observer | None) -> dict[str, Any]:
        stored = self.store.add_signal(run.id, name, data, self.clock.now())
        if stored is None or stored.status.terminal:
            status = stored.status if stored else "gone"
            raise InvalidState(f"run {run.id} already {status}; signal {name!r} refused")
        return self._continue(stored, continue_inline, observer)

    def _continue(self, stored: Run, continue_inline: bool, observer: Observer | None) -> dict[str, Any]:
        """After a signal: carry the run on here unless a live process owns it (a dead owner is taken over)."""
        if continue_inline and not self._owned_elsewhere(stored):
            dead = (stored.owner,) if stored.owner and owner_is_dead(stored.owner, self.owner) else ()
            result = self.drive(stored.id, observer=observer, dead_owners=dead)
            self._continue_parent(stored)
            return result
        return self.result(stored.id)

    def _continue_parent(self, run: Run) -> None:
        """A child finished here: carry its suspended parent on too (no worker needed)."""
        parent_id = run.parent_id
        while parent_id:
            parent = self.store.get_run(parent_id)
            if parent is None or parent.status.terminal or parent.owner or (parent.ready_at or float("inf")) > self.clock.now():
                return
            self.drive(parent_id)
            parent_id = parent.parent_id

    def deliver_hook(self, token: str, data: Any = None, *, continue_inline: bool = True, observer: Observer | None = None) -> dict[str, Any]:
        if not self.has_store():
            raise InvalidInput("unknown hook token")
        run, _, refusal = self.store.deliver_hook(token, data, self.clock.now())
        if refusal:
            raise (InvalidState if run is not None else InvalidInput)(refusal)
        assert run is not None
        return self._continue(run, continue_inline, observer)

    def cancel(self, run_id: str, reason: str = "cancelled", *, observer: Observer | None = None, wait_seconds: float = 10.0) -> dict[str, Any]:
        run = self.get_run(run_id)
        if run.status.terminal:
            raise InvalidState(f"run {run.id} already {run.status}; nothing to cancel")
        updated = self.store.request_cancel(run.id, reason, self.clock.now())
        assert updated is not None
        if updated.status.terminal:
            raise InvalidState(f"run {run.id} already {updated.status}; nothing to cancel")
        if self._owned_elsewhere(updated):
            deadline = self.clock.now() + wait_seconds
            while self.clock.now() < deadline and not self.get_run(run.id).status.terminal:
                self.clock.block(0.1)
            result = self.result(run.id)
        else:
            dead = (updated.owner,) if updated.owner and owner_is_dead(updated.owner) else ()
            result = self.drive(run.id, observer=observer, dead_owners=dead)
        rollback = result.get("rollback_result") or {}
        return {
            **result,
            "cancelled": result["status"] == RunStatus.CANCELLED,
            "reason": reason,
            "rolled_back_steps": rollback.get("rolled_back_steps", []),
        }

    def _owned_elsewhere(self, run: Run) -> bool:
        if not run.owner or run.owner == self.owner:
            return False
        if (run.lease_expires_at or 0) <= self.clock.now():
            return False
        return not owner_is_dead(run.owner)

    def query(self, run_id: str, name: str) -> Any:
        from ductape_cli.engine.queries import run_query

        run = self.get_run(run_id)
        wf = self.definition(run.tag)
        return run_query(run, wf, self.store.load_journal(run.id), name)
