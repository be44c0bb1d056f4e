"""The engine: the Python API the CLI (and users) call to start, drive and inspect runs.

An `Engine` holds one project's configuration, a store connection per thread,
an event loop per thread, and the lease keeper. It is not a global: make as
many as you like (tests make one per temporary project).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ductape_cli.config import ProjectConfig, load_config
from ductape_cli.definition import WorkflowDefinition
from ductape_cli.discovery import Registry, discover, load_one, trusted_module
from ductape_cli.durations import parse_duration
from ductape_cli.engine import same_core
from ductape_cli.engine.clock import SystemClock
from ductape_cli.engine.leases import (
    HOST,
    LeaseKeeper,
    cancel_in_process,
    new_owner_id,
    owner_is_dead,
    owner_pid,
    pid_alive,
)
from ductape_cli.engine.records import (
    Attempt,
    CancelResult,
    Comparison,
    CustomEvent,
    Family,
    RunDetail,
    RunResult,
    Schedule,
    StepDetail,
    iso_ms,
)
from ductape_cli.engine.results import completed_step_tags, run_status, step_view, workflow_result
from ductape_cli.errors import (
    Conflict,
    DefinitionError,
    HookNotFound,
    IdempotencyConflict,
    InvalidInput,
    InvalidState,
    RunIdTaken,
    RunNotFound,
    WorkflowNotFound,
)
from ductape_cli.jsonin import MAX_DEPTH, nesting_depth
from ductape_cli.models import (
    ErrorCode,
    EventType,
    Lifecycle,
    Observed,
    OpKind,
    Run,
    RunError,
    RunStatus,
    StepRecord,
)
from ductape_cli.store import EventRow, Store, dumps, is_postgres, open_store
from ductape_cli.store.sqlite import new_lease

if TYPE_CHECKING:
    import asyncio

    from ductape_cli.definitions import DefineReport

    # Imported where a run executes: reading commands (status, list, history) never load the
    # executor, asyncio or the ssl module asyncio pulls in (issue 19's start-up item).
    from ductape_cli.engine.execution import Execution, Outcome
    from ductape_cli.engine.journal import Listener, Observer, RunView

MIN_ID_FRAGMENT = 6  # a run id may be shortened to a unique prefix or suffix this long
AMBIGUOUS_SHOWN = 4
INLINE_WAIT = 5.0  # `run` waits in-process for sleeps up to this long, then returns "running"
logger = logging.getLogger("ductape.engine")
# A run whose workflow no worker can load is retried after 1, 2, 4 ... s (at most 5 min), then failed.
LOAD_RETRY_BASE = 1.0
LOAD_RETRY_CAP = 300.0
LOAD_ATTEMPTS = 8


def uncompiled_schema(wf: WorkflowDefinition, source_hash: str, reason: str) -> dict[str, Any]:
    """A definition record for a workflow the recorder could not walk: options only, no steps."""
    import hashlib

    schema: dict[str, Any] = {
        "tag": wf.tag,
        "name": wf.name,
        "options": wf.options_summary(),
        "steps": [],
        "recording_error": reason,
    }
    schema["version"] = hashlib.sha256(dumps(schema).encode()).hexdigest()[:16]
    schema["source_hash"] = source_hash
    return schema


MAX_METADATA_BYTES = 16_384


def check_metadata(metadata: Any) -> dict[str, Any] | None:
    """A run's metadata: a JSON object of at most 16 KiB, or None."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise InvalidInput(f"metadata must be a JSON object, got {type(metadata).__name__}")
    try:
        text = dumps(metadata)
    except (TypeError, ValueError):
        raise InvalidInput("metadata must be JSON-serialisable") from None
    if len(text.encode()) > MAX_METADATA_BYTES:
        raise InvalidInput(
            f"metadata is {len(text.encode())} bytes; the limit is {MAX_METADATA_BYTES}"
        )
    return json.loads(text)


def define_notice(tag: str, schema: dict[str, Any], *, first: bool) -> str:
    """The one line `run` prints when it (re)compiled a workflow; one that could not be recorded says so
    instead of claiming steps it does not have."""
    version = str(schema["version"])[:12]
    steps = len(schema.get("steps") or [])
    counted = f"{steps} step{'s' if steps != 1 else ''}"
    if schema.get("recording_error"):
        return f"could not record {tag} ({schema['recording_error']}); running it without a compiled schema (version {version})"
    if schema.get("incomplete"):
        return (
            f"could not record all of {tag} ({schema['incomplete'][0]}); running it with the {counted} "
            f"recorded before that (version {version})"
        )
    verb = "compiled" if first else "recompiled (source changed)"
    return f"{verb} {tag} → version {version} ({counted})"


def unknown_tag(tag: str, known: list[str], where: str, hint: str = "") -> str:
    """One line for an unknown workflow tag: the closest known tags, never the whole list."""
    import difflib

    close = difflib.get_close_matches(tag, known, n=3, cutoff=0.5)
    if not close:
        close = [k for k in sorted(known) if tag.lower() in k.lower() or k.lower() in tag.lower()][
            :3
        ]
    if close:
        return f"unknown workflow {tag!r}; did you mean {' or '.join(close)}?"
    count = f"{len(known)} workflow{'s' if len(known) != 1 else ''} {where}"
    return f"unknown workflow {tag!r} ({count}; `ductape workflows` lists them){hint}"


def display_folder(folder: Path) -> str:
    try:
        return str(folder.relative_to(Path.cwd()))
    except ValueError:
        return str(folder)


def new_run_id() -> str:
    """Time-ordered ids (ms, then randomness): new runs land at the end of the runs index, not in random pages."""
    return f"wf_{int(time.time() * 1000):011x}{os.urandom(3).hex()}"  # os.urandom, as secrets uses; importing secrets (hmac) costs every command ~4 ms


def _successful_attempt(record: StepRecord, failed: list[Attempt]) -> Attempt:
    """The attempt that succeeded (the journal row keeps no attempt row for it, to keep the hot path one
    write): it started after the last failed attempt and its retry delay, and ended with the step."""
    started = record.started_at
    if failed and started is not None:
        last = failed[-1]
        options = record.options or {}
        delay = (options.get("retry_delay_ms") or 0) * (options.get("backoff") or 1) ** (
            last.attempt - 1
        )
        if options.get("max_delay_ms") is not None:
            delay = min(delay, options["max_delay_ms"])
        started = (last.started_at or started) + ((last.duration or 0) + delay) / 1000
    ended = record.ended_at
    if started is not None and ended is not None:
        started = min(started, ended)
    duration = int((ended - started) * 1000) if started is not None and ended is not None else None
    return Attempt(attempt=record.attempts, started_at=started, duration=duration, error=None)


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
        self._local = threading.local()
        self._registry = registry
        self._full_registry = registry is not None
        self._versions: dict[str, tuple[WorkflowDefinition, str]] = {}
        self._memory_store: Store | None = None
        # Engine-wide listeners (metrics, traces): see `emit`. Empty unless a feature enables one.
        self.listeners: list[Listener] = []
        from ductape_cli.observe import install_from_environment

        install_from_environment(self)
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._opened: list[Store] = []  # each thread's store, closed together by `close`

    # -- resources ----------------------------------------------------------------

    def open_store(self) -> Store:
        if self.store_path == ":memory:":
            # One shared connection: an in-memory database exists only inside it.
            if self._memory_store is None:
                self._memory_store = open_store(":memory:", namespace=self.config.store_namespace)
            return self._memory_store
        return open_store(
            self.store_path,
            durability=self.config.durability,
            namespace=self.config.store_namespace,
        )

    def has_store(self) -> bool:
        """Whether the store exists yet; reads and bad input must not create it."""
        if self.store_path == ":memory:" or getattr(self._local, "store", None) is not None:
            return True
        if is_postgres(self.store_path):
            return True  # a server's database: opening it creates nothing but the schema
        return Path(self.store_path).exists()

    @property
    def store(self) -> Store:
        store = getattr(self._local, "store", None)
        if store is None or store.closed:  # closed by `close` from another thread: open afresh
            store = self._local.store = self.open_store()
            self._opened.append(store)
        return store

    def _loop(self) -> asyncio.AbstractEventLoop:
        loop = getattr(self._local, "loop", None)
        if loop is None or loop.is_closed():
            import asyncio

            loop = self._local.loop = asyncio.new_event_loop()
            self._loops.append(loop)
        return loop

    def check_components(self, env: str | None = None) -> None:
        """Refuse to start when a component table or a ${VAR} it uses is wrong (`ConfigError`, exit 2).

        `env` (checked) picks the overrides; None is the project's default env."""
        from ductape_cli.components.checks import validate_components

        validate_components(
            self.config, self.config.check_env(env) if env is not None else self.config.default_env
        )

    def components_report(self, env: str | None = None) -> dict[str, Any]:
        """`components check`: every declared component and the problems found, for `env`."""
        from ductape_cli.components.checks import components_report

        return components_report(self, self.config.check_env(env or self.config.default_env))

    def step_function(self, tag: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The function step `tag` runs: `fn` itself. The seam the testing kit overrides
        (`SandboxEngine`, for `mock_step`); nothing else on the step path is replaceable."""
        return fn

    def emit(self, view: RunView | None, kind: Observed, data: dict[str, Any]) -> None:
        """Tell every engine-wide listener about a lifecycle event (the one seam metrics and traces use).

        `view` is the execution's read-only `RunView`, None for events outside an execution
        (`run_created`). A listener's error is logged, never raised into the run.
        """
        for listener in self.listeners:
            try:
                listener(view, kind, data)
            except Exception:  # noqa: BLE001 - observability must never break a run
                logger.exception("listener %r failed on %s", listener, kind)

    def close(self) -> None:
        for listener in self.listeners:
            closing = getattr(listener, "close", None)
            if closing is not None:
                closing()
        self.leases.stop()
        # Broker connections opened by produce steps. A module another thread is still importing
        # has no `close_clients` yet, and so no client of ours to close.
        brokers = sys.modules.get("ductape_cli.components.brokers")
        close_clients = getattr(brokers, "close_clients", None)
        if close_clients is not None:
            close_clients(self._loops)
        # Every thread's store and idle event loop: an engine made per command (the CLI, tests
        # through its runner) must give back its connections and file descriptors.
        opened, self._opened = self._opened, []
        for store in opened:
            if store is not self._memory_store:
                store.close()
        self._local.store = None
        for loop in self._loops:
            if not loop.is_running() and not loop.is_closed():
                loop.close()

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
            path = trusted_module(
                self.config.workflows_dir, stored.get("source_path") if stored else None
            )
            if path is not None:
                try:
                    registry = load_one(self.config.workflows_dir, path)
                except Exception:  # noqa: BLE001 - fall back to full discovery, which reports it properly
                    logger.debug(
                        "loading %r from the cached module list failed; discovering all",
                        tag,
                        exc_info=True,
                    )
                    registry = None
                if registry is not None and tag in registry.by_tag:
                    self._registry = registry
                    return registry.by_tag[tag]
        registry = self.registry()
        if tag not in registry.by_tag and not registry.errors:
            raise WorkflowNotFound(
                unknown_tag(tag, list(registry.by_tag), f"in {display_folder(registry.folder)}")
            )
        return registry.get(tag)

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
        from ductape_cli.compiler import InvalidCall, compile_definition

        try:
            # Not strict: a handler that raises while recording keeps the steps recorded so far.
            schema = compile_definition(wf, current_hash, strict=False)
        except InvalidCall:
            raise  # found before the first step runs: exit 2, nothing written
        except DefinitionError as exc:
            # A handler the recorder cannot walk still runs; it just has no compiled conditions.
            schema = uncompiled_schema(wf, current_hash, exc.message)
        version = schema["version"]
        self.store.save_definition(wf.tag, version, wf.name, wf.source_file or "", schema)
        self.notices.append(define_notice(wf.tag, schema, first=stored is None))
        return str(version)

    def define(self, *, check: bool = False) -> DefineReport:
        """`ductape define`: compile every workflow of the project (with `check`, write nothing)."""
        from ductape_cli.definitions import define_all

        return define_all(self, check=check)

    def show(self, tag: str, version: str | None = None) -> dict[str, Any]:
        """One stored definition: the latest, or `version` (a unique prefix works), with every version's id."""
        from ductape_cli.stored_definitions import show_definition

        if self.has_store() and version is None and self.store.latest_definition(tag) is None:
            stored = sorted({d["tag"] for d in self.store.list_definitions()})
            raise WorkflowNotFound(
                unknown_tag(
                    tag, stored, "stored", "; run `ductape define` first" if not stored else ""
                )
            )
        return show_definition(self, tag, version)

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
        metadata: dict[str, Any] | None = None,
        retries: int | None = None,
        journal: Callable[[str], tuple[list[StepRecord], list[EventRow]]] | None = None,
    ) -> tuple[Run, bool]:
        """Create a run (owned by this engine unless `detach`). Returns ``(run, created)``.

        `metadata` is the caller's JSON object kept with the run (shown by status, list and
        the API); `retries` is how many fresh runs a worker starts if this one fails, as a
        schedule's retries do. `journal` gives, for the new run's id, the rows it starts from
        and their events (a replay's copies): they are written in the transaction that
        creates the run.
        """
        wf = self.definition(tag)
        env = self.config.check_env(env or self.config.default_env)
        if wf.envs and env not in wf.envs:
            raise InvalidInput(
                f"workflow {tag} is not enabled in env {env!r} (envs: {', '.join(wf.envs)})"
            )
        if env in wf.inactive_envs:
            raise InvalidInput(
                f"workflow {tag} is inactive in env {env!r} (envs=[{{'slug': {env!r}, 'active': False}}])"
            )
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
        timeout_ms = (
            parse_duration(timeout, what="timeout") if timeout is not None else wf.timeout_ms
        )
        if workflow_id is not None and (
            not workflow_id or len(workflow_id) > 200 or any(c.isspace() for c in workflow_id)
        ):
            raise InvalidInput(
                f"invalid workflow id {workflow_id!r}: use 1-200 characters without spaces"
            )
        metadata = check_metadata(metadata)
        if retries is not None:
            if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
                raise InvalidInput(f"retries must be a whole number from 0 to 100, got {retries!r}")
            lineage = {**(lineage or {}), "retries_left": retries}
        version = self.ensure_defined(wf)
        now = self.clock.now()
        run = Run(
            id=workflow_id or new_run_id(),
            tag=tag,
            status=RunStatus.PENDING if detach else RunStatus.RUNNING,
            input=input,
            version=version,
            env=env,
            context=dict(context or {}),
            idempotency_key=idempotency_key,
            parent_id=parent_id,
            lineage=dict(lineage or {}),
            options={"timeout_ms": timeout_ms} if timeout_ms else {},
            created_at=now,
            started_at=None if detach else now,
            deadline=now + timeout_ms / 1000 if timeout_ms else None,
            owner=None if detach else self.owner,
            lease_expires_at=None if detach else now + self.lease_ttl,
            lease=None if detach else new_lease(),
            ready_at=now,
            schedule_id=schedule_id,
            metadata=metadata or {},
        )
        for field_name, value in (links or {}).items():
            setattr(run, field_name, value)
        if self.listeners:
            self.emit(
                None, Lifecycle.RUN_CREATED, {"run": run}
            )  # e.g. tracing stores the trace context in run.options
        data: dict[str, Any] = {
            "env": env,
            "version": version,
        }  # the input is stored once, on the run
        if metadata:
            data["metadata"] = metadata
        if context:
            data["context"] = context
        for key in ("parent_id", "replayed_from", "restarted_from", "schedule_id"):
            if getattr(run, key):
                data[key] = getattr(run, key)
        rows, seeded_events = journal(run.id) if journal is not None else ([], [])
        try:
            stored, created = self.store.create_run(
                run, [(now, EventType.WORKFLOW_STARTED, None, data), *seeded_events], rows
            )
        except RunIdTaken:
            if self.listeners:
                self.emit(None, Lifecycle.RUN_DISCARDED, {"run": run})
            raise Conflict(
                f"a run with id {run.id!r} already exists; choose another --workflow-id"
            ) from None
        if not created and self.listeners:
            self.emit(
                None, Lifecycle.RUN_DISCARDED, {"run": run}
            )  # the idempotency key named an existing run
        if not created and json.dumps(stored.input, sort_keys=True) != json.dumps(
            input, sort_keys=True
        ):
            # The Stripe rule: a key names one request; the same key with other input is a mistake.
            raise IdempotencyConflict(
                f"idempotency key {idempotency_key!r} already names run {stored.id}, started with different input; "
                "send the same input to get that run back, or use a new key"
            )
        return stored, created

    def submit(self, tag: str, input: Any = None, **options: Any) -> tuple[Run, bool]:
        """Queue a run for a worker (what `serve` does for a remote caller). Returns ``(run, created)``.

        An idempotency key already used with other input is a `Conflict` (HTTP 409), as for `start`.
        """
        return self.start(tag, input, detach=True, **options)

    def run(
        self,
        tag: str,
        input: Any = None,
        *,
        wait: bool = False,
        observer: Observer | None = None,
        **options: Any,
    ) -> RunResult:
        """Start `tag` and drive it until it ends or waits (the Python form of `ductape run`).

        `options` are `start`'s: env, workflow_id, idempotency_key, timeout, context, detach.
        """
        run, created = self.start(tag, input, **options)
        if options.get("detach"):
            return self.result(run.id)
        if not created:
            return self.result(run.id)
        return self.drive(run.id, wait=wait, observer=observer, started=run)

    def drive(
        self,
        run_id: str,
        *,
        wait: bool = False,
        observer: Observer | None = None,
        inline_wait: float = INLINE_WAIT,
        dead_owners: tuple[str, ...] = (),
        started: Run | None = None,
    ) -> RunResult:
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
                run = self.store.claim_run(
                    run_id, self.owner, self.clock.now(), self.lease_ttl, dead_owners
                )
            if run is None:
                current = self.get_run(run_id)
                if current.status.terminal or not wait:
                    return self.result(run_id)
                self.clock.block(0.2)
                continue
            outcome, completed = self.execute(
                run, observer=observer, inline_wait=inline_wait, journal=journal
            )
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
        self,
        run: Run,
        *,
        observer: Observer | None = None,
        inline_wait: float = INLINE_WAIT,
        journal: dict[int, StepRecord] | None = None,
    ) -> tuple[Outcome, list[str]]:
        """One execution of a claimed run on this thread's event loop (`journal`: already known, e.g. empty)."""
        from ductape_cli.engine.execution import Execution

        wf = self.definition(run.tag)
        if run.load_attempts and run.lease:
            self.store.set_run_fields(
                run.id, {"load_error": None, "load_attempts": 0}, lease=run.lease
            )
            run.load_error, run.load_attempts = None, 0
        execution = Execution(
            self, run, wf, inline_wait=inline_wait, observer=observer, records=journal
        )
        if execution.cancelled_unstarted():
            return execution.cancel_unstarted(), []
        try:
            outcome = self._loop().run_until_complete(execution.execute())
        finally:
            same_core.let_go()  # a call that landed as the loop stopped never ran its callback
        return outcome, execution.steps.completed

    def defer_unloadable(self, run: Run, message: str) -> float | None:
        """A claimed run whose workflow cannot be loaded: retry later with backoff, or fail it for good.

        Returns when it is due again, or None once it was marked failed
        (`WORKFLOW_NOT_LOADABLE`; `ductape resume` continues it when the code is back).
        """
        now = self.clock.now()
        tries = run.load_attempts + 1
        retry_at = (
            None
            if tries >= LOAD_ATTEMPTS
            else now + min(LOAD_RETRY_BASE * 2 ** (tries - 1), LOAD_RETRY_CAP)
        )
        data: dict[str, Any]
        if retry_at is None:
            error = RunError(message, ErrorCode.WORKFLOW_NOT_LOADABLE).to_dict()
            data = {"error": error}
        else:
            detail = {"attempt": tries, "of": LOAD_ATTEMPTS, "retry_at": retry_at}
            data = {"level": "error", "message": f"cannot load workflow: {message}", "data": detail}
        event_type = EventType.WORKFLOW_FAILED if retry_at is None else EventType.LOG
        self.store.defer_unloadable(
            run.id, run.lease or "", message, now, retry_at, [(now, event_type, None, data)]
        )
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
        matches = (
            self.store.find_run_ids(run_id, limit=AMBIGUOUS_SHOWN + 1)
            if len(run_id) >= MIN_ID_FRAGMENT
            else []
        )
        if len(matches) > 1:
            shown = ", ".join(matches[:AMBIGUOUS_SHOWN]) + (
                ", ..." if len(matches) > AMBIGUOUS_SHOWN else ""
            )
            raise InvalidInput(
                f"run id {run_id!r} is ambiguous: it matches {shown}; give more characters"
            )
        run = self.store.get_run(matches[0]) if matches else None
        if run is None:
            raise RunNotFound(f"no run with id {run_id!r} in {self.store_path}")
        if self.on_resolved is not None and (run_id, run.id) not in self._resolved:
            self._resolved.add((run_id, run.id))
            self.on_resolved(run_id, run.id)
        return run

    def result(self, run_id: str) -> RunResult:
        """A run's result in the seed's shape (with `waiting` while it has not ended)."""
        run = self.get_run(run_id)
        return workflow_result(run, completed_step_tags(self.store.load_journal(run.id)))

    def status(self, run_id: str) -> RunDetail:
        """`ductape status`: the result, input, state, every step in compiled order, lineage and children."""
        run = self.get_run(run_id)
        journal = self.store.load_journal(run.id)
        children = self.store.list_runs(parent_id=run.id, limit=1000, full=False)
        compiled = self._compiled_steps(run)
        status = run_status(
            run,
            journal,
            children,
            self._unreached_steps(run, journal, compiled),
            [s["tag"] for s in compiled],
        )
        status["pending_signals"] = [
            {"name": s.name, "payload": s.payload, "received_at": int(s.created_at * 1000)}
            for s in self.store.signals(run.id)
            if s.consumed_seq is None and not s.name.startswith("hook:")
        ]
        return status

    def _compiled_steps(self, run: Run) -> list[dict[str, Any]]:
        stored = self.store.get_definition(run.tag, run.version) if run.version else None
        return list((stored["schema"] if stored else {}).get("steps", []))

    def _unreached_steps(
        self, run: Run, journal: dict[int, StepRecord], compiled: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Compiled steps the run has not reached: `pending` while it runs, `skipped` (with why) once it ended."""
        seen = {r.tag for r in journal.values()} | {run.current_step}
        unreached = []
        for step in compiled:
            if step.get("tag") in seen or step.get("dynamic"):
                continue
            if not run.status.terminal:
                unreached.append(
                    {
                        "tag": step["tag"],
                        "kind": "step",
                        "status": "pending",
                        "output": None,
                        "error": None,
                    }
                )
                continue
            reason = "not reached"
            if step.get("condition"):
                reason = f"not reached (condition {step['condition']})"
            elif run.status != RunStatus.COMPLETED:
                reason = f"not reached (run {run.status})"
            unreached.append(
                {
                    "tag": step["tag"],
                    "kind": "step",
                    "status": "skipped",
                    "reason": reason,
                    "output": None,
                    "error": None,
                }
            )
        return unreached

    def list_runs(
        self,
        *,
        tag: str | None = None,
        status: str | None = None,
        parent_id: str | None = None,
        schedule_id: str | None = None,
        search: str | None = None,
        limit: int = 20,
        offset: int = 0,
        full: bool = False,
    ) -> list[Run]:
        """Runs, newest first: summaries (no input, output, error, state, context) unless `full`.

        `search` matches id, input or metadata, as plain text; an unknown status is
        `InvalidInput` naming the valid ones."""
        if status is not None and status not in {s.value for s in RunStatus}:
            raise InvalidInput(
                f"unknown status {status!r} (use one of {', '.join(s.value for s in RunStatus)})"
            )
        if not self.has_store():
            return []
        return self.store.list_runs(
            tag=tag,
            status=status,
            parent_id=parent_id,
            schedule_id=schedule_id,
            search=search,
            limit=limit,
            offset=offset,
            full=full,
        )

    def count_runs(
        self, *, tag: str | None = None, status: str | None = None, search: str | None = None
    ) -> int:
        """How many runs match (the total behind a page of `list_runs`)."""
        return (
            self.store.count_runs(tag=tag, status=status, search=search) if self.has_store() else 0
        )

    def children(self, run_id: str) -> list[Run]:
        """The child runs a run started, oldest first."""
        run = self.get_run(run_id)
        return list(reversed(self.store.list_runs(parent_id=run.id, limit=10_000)))

    def parent(self, run_id: str) -> Run | None:
        """The run that started this one as a child, if any."""
        run = self.get_run(run_id)
        return self.get_run(run.parent_id) if run.parent_id else None

    def workflows(self) -> list[dict[str, Any]]:
        """Each stored workflow (latest version, versions, steps) with its run counts by status."""
        from ductape_cli.stored_definitions import list_workflows

        if not self.has_store():
            return []
        counts = self.store.run_counts()
        return [{**row, "runs": counts.get(row["tag"], {})} for row in list_workflows(self)]

    def open_hooks(self, run_id: str, name: str | None = None) -> list[dict[str, Any]]:
        """The hooks a run created (`ctx.create_hook`) and nobody used yet; `name` picks one kind."""
        run = self.get_run(run_id)
        return [h for h in self.store.open_hooks(run.id) if name is None or h["name"] == name]

    def enable_feed(self) -> None:
        """Start recording this store's changes for `feed` (what `serve` does on start)."""
        self.store.enable_feed()

    def feed_position(self) -> int:
        """A cursor for `feed` that skips everything already written."""
        return self.store.feed_position() if self.has_store() else 0

    def feed(
        self, after: int = 0, *, run_id: str | None = None, tag: str | None = None, limit: int = 500
    ) -> tuple[list[dict[str, Any]], int]:
        """Live-stream events after cursor `after` across the store (any writer), oldest first,
        optionally of one run or one workflow. Returns ``(events, new cursor)``."""
        from ductape_cli.engine.feed import stream_events

        if not self.has_store():
            return [], after
        rows = self.store.read_feed(after, run_id=run_id, tag=tag, limit=limit)
        events = [event for row in rows for event in stream_events(row)]
        return events, rows[-1].id if rows else after

    def history(self, run_id: str, *, types: list[str] | None = None) -> list[dict[str, Any]]:
        """Every event of a run in time order (completed steps derived from the journal)."""
        from ductape_cli.engine import history

        run = self.get_run(run_id)
        history.check_types(types)
        events = history.with_input(
            self.store.events(run.id, types=history.store_types(types)), run.input
        )
        return history.merge(events, self.store.load_journal(run.id).values(), types)

    def step(self, run_id: str, tag: str) -> StepDetail:
        """One step of a run (`ductape step`): status, input, output, error and every attempt."""
        run = self.get_run(run_id)
        journal = self.store.load_journal(run.id)
        for record in journal.values():
            if record.tag == tag and record.kind == OpKind.STEP:
                detail = step_view(record)
                attempts = [
                    Attempt(
                        attempt=a.attempt,
                        started_at=a.started_at,
                        duration=a.duration_ms,
                        error=a.error,
                    )
                    for a in self.store.attempts(run.id, record.seq)
                ]
                if (
                    record.status in ("completed", "rolled_back")
                    and len(attempts) < record.attempts
                ):
                    attempts.append(_successful_attempt(record, attempts))
                detail.update(
                    {"workflow_id": run.id, "input": record.input, "attempt_log": attempts}
                )
                return StepDetail.from_dict(detail)
        known = ", ".join(r.tag for r in journal.values() if r.kind == OpKind.STEP) or "none"
        raise InvalidInput(f"run {run.id} has no step {tag!r} (steps: {known})")

    step_detail = step

    def events(self, run_id: str, type: str | None = None) -> list[CustomEvent]:
        """The custom events of a run (`ctx.emit_event`, `emit_event`, `POST /events`), oldest first;
        only those of `type` when given. `ductape events` and `GET /runs/:id/events` show these."""
        return [
            CustomEvent(
                id=e["id"],
                timestamp=iso_ms(e["timestamp"]),
                type=e["data"].get("event"),
                payload=e["data"].get("payload"),
                step=e.get("step"),
            )
            for e in self.history(run_id, types=[EventType.CUSTOM])
            if type is None or e["data"].get("event") == type
        ]

    def follow(
        self, run_id: str, *, types: list[str] | None = None, poll: float = 0.25
    ) -> Iterator[list[dict[str, Any]]]:
        """`history --follow`: the events so far, then each batch of new ones, until the run has ended.

        Each poll reads only events after the last one seen (a cursor), never the whole history."""
        from ductape_cli.engine.history import Cursor, check_types

        run = self.get_run(run_id)
        check_types(types)
        cursor = Cursor(self, run.id, types)
        while True:
            ended = self.get_run(run.id).status.terminal
            new = cursor.read()
            if new:
                yield new
            if ended:
                return
            self.clock.block(poll)

    def export(self, run_id: str, events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """`history --json`: the run, its events and its journal (what `replay_history` checks)."""
        from ductape_cli.engine.history import export_run

        return export_run(self, run_id, events)

    # -- runs made from runs -----------------------------------------------------------

    def replay(
        self,
        run_id: str,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
        timeout: int | str | None = None,
        from_step: str | None = None,
        step_outputs: dict[str, Any] | None = None,
        wait: bool = False,
        observer: Observer | None = None,
    ) -> RunResult:
        """A new run with the original input and fresh state (`ctx.is_replay`), linked as `replayed_from`.

        With `from_step`, steps before it return the original's outputs (or `step_outputs`) without running.
        """
        from ductape_cli.engine import lineage

        return RunResult.from_dict(
            lineage.replay(
                self,
                run_id,
                reason=reason,
                idempotency_key=idempotency_key,
                timeout=timeout,
                from_step=from_step,
                step_outputs=step_outputs,
                observer=observer,
                wait=wait,
            )
        )

    def restart(
        self,
        run_id: str,
        *,
        input: Any = None,
        set_values: dict[str, Any] | list[tuple[str, Any]] | None = None,
        input_override: Any = None,
        merge: bool = False,
        reason: str | None = None,
        idempotency_key: str | None = None,
        timeout: int | str | None = None,
        wait: bool = False,
        observer: Observer | None = None,
    ) -> RunResult:
        """A new run with new input (`input`), or the original's changed (`set_values` dotted keys,
        `input_override` with `merge`), linked as `restarted_from`."""
        from ductape_cli.engine import lineage

        return RunResult.from_dict(
            lineage.restart(
                self,
                run_id,
                input=input,
                set_values=set_values,
                input_override=input_override,
                merge=merge,
                reason=reason,
                idempotency_key=idempotency_key,
                timeout=timeout,
                observer=observer,
                wait=wait,
            )
        )

    def resume(
        self,
        run_id: str,
        *,
        from_step: str | None = None,
        from_checkpoint: str | None = None,
        skip: list[str] | tuple[str, ...] = (),
        input: Any = None,
        wait: bool = False,
        observer: Observer | None = None,
    ) -> RunResult:
        """Continue the same run from its journal: a crashed or failed run (the failed step runs again),
        or from a step or checkpoint; `skip` tags are recorded skipped; `input` (with a step or checkpoint)
        is merged into the run's input for the re-executed part. Refused for completed runs."""
        run = self.get_run(run_id)
        if (
            from_step is None
            and from_checkpoint is None
            and not skip
            and input is None
            and not run.status.terminal
        ):
            return self._continue(run.id, observer=observer, wait=wait)
        from ductape_cli.engine import lineage

        return RunResult.from_dict(
            lineage.resume_from(
                self,
                run.id,
                from_checkpoint=from_checkpoint,
                from_step=from_step,
                skip=list(skip),
                input=input,
                observer=observer,
                wait=wait,
            )
        )

    def related(self, run_id: str) -> Family:
        """The run's family: original, replays, restarts, resumes and children, in tree order."""
        from ductape_cli.engine import lineage

        return Family.from_dict(lineage.related(self, run_id))

    def compare(self, run_a: str, run_b: str) -> Comparison:
        """What differs between two runs: input fields, steps (status, output, error), output; durations."""
        from ductape_cli.engine import lineage

        return Comparison.from_dict(lineage.compare(self, run_a, run_b))

    # -- schedules ---------------------------------------------------------------------

    def dispatch(
        self,
        tag: str,
        input: Any = None,
        *,
        at: str | None = None,
        after: str | int | None = None,
        cron: str | None = None,
        timezone: str | None = None,
        env: str | None = None,
        retries: int | None = None,
        timeout: str | None = None,
    ) -> Schedule:
        """Schedule `tag`: once `at` an ISO time or `after` a duration, or on a `cron` in `timezone`."""
        from ductape_cli.engine import schedules

        view = schedules.create(
            self,
            tag,
            {} if input is None else input,
            at=at,
            in_=None if after is None else str(after),
            cron=cron,
            timezone=timezone,
            env=env,
            retries=retries,
            timeout=timeout,
        )
        return Schedule.from_dict(view)

    def list_schedules(self) -> list[Schedule]:
        from ductape_cli.engine import schedules

        return [
            Schedule.from_dict(schedules.describe(self, s))
            for s in (self.store.list_schedules() if self.has_store() else [])
        ]

    def get_schedule(self, job_id: str) -> Schedule:
        """One schedule, its next five fire times and the runs it started."""
        from ductape_cli.engine import schedules

        view = Schedule.from_dict(schedules.describe(self, schedules.get(self, job_id), upcoming=5))
        view.runs = [
            {"workflow_id": r.id, "status": str(r.status)}
            for r in self.list_runs(schedule_id=job_id)
        ]
        return view

    def pause_schedule(self, job_id: str) -> Schedule:
        from ductape_cli.engine import schedules

        return Schedule.from_dict(schedules.set_paused(self, job_id, True))

    def resume_schedule(self, job_id: str) -> Schedule:
        """Unpause: it fires next at its first due time after now."""
        from ductape_cli.engine import schedules

        return Schedule.from_dict(schedules.set_paused(self, job_id, False))

    def delete_schedule(self, job_id: str) -> None:
        """Delete a schedule; the runs it started are kept."""
        from ductape_cli.engine import schedules

        schedules.delete(self, job_id)

    # -- control ---------------------------------------------------------------------

    def set_metadata(self, run_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge `changes` into a run's metadata (a null value removes its key); returns the new metadata."""
        run = self.get_run(run_id)
        if not isinstance(changes, dict):
            raise InvalidInput(f"metadata must be a JSON object, got {type(changes).__name__}")
        merged = {**run.metadata, **changes}
        merged = check_metadata({k: v for k, v in merged.items() if v is not None}) or {}
        self.store.set_metadata(run.id, merged)
        return merged

    def emit_event(self, run_id: str, type_: str, payload: Any = None) -> dict[str, Any]:
        """Record a custom event on a run from outside it (what `ctx.emit_event` records inside)."""
        run = self.get_run(run_id)
        if not isinstance(type_, str) or not type_.strip() or len(type_) > 200:
            raise InvalidInput("an event needs a type of 1-200 characters")
        try:
            payload = json.loads(dumps(payload))
        except (TypeError, ValueError):
            raise InvalidInput("event payload must be JSON-serialisable") from None
        now = self.clock.now()
        self.store.append_events(
            run.id, [(now, EventType.CUSTOM, None, {"event": type_, "payload": payload})]
        )
        return {
            "executionId": run.id,
            "type": type_,
            "payload": payload,
            "timestamp": int(now * 1000),
        }

    def _continue(
        self, run_id: str, *, observer: Observer | None = None, wait: bool = False
    ) -> RunResult:
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
                    raise InvalidState(
                        f"run {run.id} is being executed by live process {pid} on this host"
                    )
                left = int((run.lease_expires_at or now) - now)
                raise InvalidState(
                    f"run {run.id} is owned by {run.owner}; its lease expires in {left}s"
                )
        self.store.append_events(
            run.id,
            [
                (
                    now,
                    EventType.WORKFLOW_RESUMED,
                    None,
                    {"reason": "resume", "previous_owner": run.owner},
                )
            ],
        )
        return self.drive(run.id, wait=wait, observer=observer, dead_owners=dead)

    def signal(
        self,
        run_id: str,
        name: str,
        data: Any = None,
        *,
        continue_inline: bool = True,
        observer: Observer | None = None,
    ) -> RunResult:
        """Deliver a signal; with no live owner, continue the run here until it ends or waits again."""
        run = self.get_run(run_id)
        if run.status.terminal:
            raise InvalidState(f"run {run.id} already {run.status}; signal {name!r} refused")
        if name.startswith("hook:"):
            raise InvalidInput(
                "signal names starting with 'hook:' are reserved; use `ductape hook TOKEN`"
            )
        self.definition(run.tag).validate_signal(name, data)
        return self._deliver(run, name, data, continue_inline, observer)

    def _deliver(
        self, run: Run, name: str, data: Any, continue_inline: bool, observer: Observer | None
    ) -> RunResult:
        stored = self.store.add_signal(run.id, name, data, self.clock.now())
        if stored is None or stored.status.terminal:
            status = stored.status if stored else "gone"
            raise InvalidState(f"run {run.id} already {status}; signal {name!r} refused")
        return self._carry_on(stored, continue_inline, observer)

    def _carry_on(self, stored: Run, continue_inline: bool, observer: Observer | None) -> RunResult:
        """After a signal: carry the run on here unless a live process owns it (a dead owner is taken over)."""
        if continue_inline and not self._owned_elsewhere(stored):
            dead = (
                (stored.owner,) if stored.owner and owner_is_dead(stored.owner, self.owner) else ()
            )
            result = self.drive(stored.id, observer=observer, dead_owners=dead)
            self._continue_parent(stored)
            return result
        return self.result(stored.id)

    def _continue_parent(self, run: Run) -> None:
        """A child finished here: carry its suspended parent on too (no worker needed)."""
        parent_id = run.parent_id
        while parent_id:
            parent = self.store.get_run(parent_id)
            if (
                parent is None
                or parent.status.terminal
                or parent.owner
                or (parent.ready_at or float("inf")) > self.clock.now()
            ):
                return
            self.drive(parent_id)
            parent_id = parent.parent_id

    def deliver_hook(
        self,
        token: str,
        data: Any = None,
        *,
        continue_inline: bool = True,
        observer: Observer | None = None,
    ) -> RunResult:
        """Deliver a single-use hook made by `ctx.create_hook` (the token is used and the data stored in one
        transaction); continue the run here when nobody owns it."""
        if not self.has_store():
            raise HookNotFound("unknown hook token")
        run, name, refusal = self.store.deliver_hook(token, data, self.clock.now())
        if refusal:
            raise (InvalidState if name else HookNotFound)(
                refusal
            )  # a known hook already used, or its run ended
        assert run is not None
        return self._carry_on(run, continue_inline, observer)

    def cancel(
        self,
        run_id: str,
        reason: str = "cancelled",
        *,
        observer: Observer | None = None,
        wait_seconds: float = 10.0,
    ) -> CancelResult:
        """Cancel a run: the rollback strategy applies and it ends `cancelled`."""
        run = self.get_run(run_id)
        if run.status.terminal:
            raise InvalidState(f"run {run.id} already {run.status}; nothing to cancel")
        updated = self.store.request_cancel(run.id, reason, self.clock.now())
        assert updated is not None
        if updated.status.terminal:
            raise InvalidState(f"run {run.id} already {updated.status}; nothing to cancel")
        if self._owned_elsewhere(updated):
            cancel_in_process(run.id, reason)
            deadline = self.clock.now() + wait_seconds
            while self.clock.now() < deadline and not self.get_run(run.id).status.terminal:
                self.clock.block(0.1)
            result = self.result(run.id)
        else:
            dead = (updated.owner,) if updated.owner and owner_is_dead(updated.owner) else ()
            result = self.drive(run.id, observer=observer, dead_owners=dead)
            self._continue_parent(
                updated
            )  # a cancelled child ends its parent's wait, as a signal does
        rollback = result.get("rollback_result") or {}
        return CancelResult.from_dict(
            {
                **result,
                "cancelled": result["status"] == RunStatus.CANCELLED,
                "reason": reason,
                "rolled_back_steps": rollback.get("rolled_back_steps", []),
            }
        )

    def _owned_elsewhere(self, run: Run) -> bool:
        if not run.owner or run.owner == self.owner:
            return False
        if (run.lease_expires_at or 0) <= self.clock.now():
            return False
        return not owner_is_dead(run.owner)

    def query(self, run_id: str, name: str) -> Any:
        """Evaluate a declared, read-only query against the run (JSON-able answer)."""
        from ductape_cli.engine.queries import run_query

        run = self.get_run(run_id)
        wf = self.definition(run.tag)
        return run_query(run, wf, self.store.load_journal(run.id), name)
