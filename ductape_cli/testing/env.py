"""`WorkflowTestEnv`: an engine on a scratch store, a virtual clock, mocks and run handles.

Runs execute in the test's own thread, one at a time, exactly as `ductape
run` and the worker execute them (the same executor, store and journal); only
time is virtual. A wait on time never blocks: with `auto_skip` the clock jumps
to the next due timer whenever the run a test waits for is waiting on time,
and `env.advance("2h")` moves it explicitly, firing every timer, timeout and
schedule due on the way, in order.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, Self

from ductape_cli.config import ProjectConfig, load_config
from ductape_cli.definition import WorkflowDefinition
from ductape_cli.discovery import Registry, discover, import_module_file
from ductape_cli.durations import parse_duration
from ductape_cli.engine.engine import Engine
from ductape_cli.engine.history import export_run
from ductape_cli.engine.results import step_view
from ductape_cli.errors import DefinitionError, InvalidInput
from ductape_cli.models import OpKind, Run, RunStatus
from ductape_cli.testing.clock import VirtualClock
from ductape_cli.testing.replayer import ReplayReport, replay_history

_UNSET: Any = object()
_MAX_ROUNDS = (
    100_000  # executions or clock jumps in one call, so a run that never settles fails the test
)


class WorkflowStillWaiting(AssertionError):
    """`handle.result()` on a run that can only go on with a signal (or with time, when auto_skip is off)."""


# -- mocks ---------------------------------------------------------------------------------


class Mock:
    """What a mocked step or component call does instead: return `output`, raise `raises`, or call `fn`.

    With `times=n` only the first n calls are mocked; later ones run the real
    thing (fail twice, then succeed). `calls` holds each call's input.
    """

    def __init__(
        self,
        pattern: str,
        *,
        output: Any = _UNSET,
        raises: Any = None,
        fn: Callable[..., Any] | None = None,
        times: int | None = None,
    ) -> None:
        if sum(x is not None for x in (raises, fn)) + (output is not _UNSET) > 1:
            raise InvalidInput(f"mock {pattern!r}: give one of output=, raises= or fn=")
        self.pattern = pattern
        self.output = output
        self.raises = raises
        self.fn = fn
        self.times = times
        self.calls: list[Any] = []

    @property
    def call_count(self) -> int:
        return len(self.calls)

    def respond(self, real: Callable[[], Any], fn_args: tuple[Any, ...], recorded: Any) -> Any:
        """One call: `real` runs the real thing, `fn_args` go to `fn`, `recorded` is kept in `calls`."""
        self.calls.append(recorded)
        if self.times is not None and len(self.calls) > self.times:
            return real()
        if self.raises is not None:
            error = self.raises
            if isinstance(error, type):
                error = error(f"mocked failure of {self.pattern}")
            raise error
        if self.fn is not None:
            return self.fn(*fn_args)
        if self.output is not _UNSET:
            return self.output
        return real()

    def __repr__(self) -> str:
        return f"<Mock {self.pattern!r} called {self.call_count}x>"


class MockTable:
    """Mocks by name; a name with `*` or `?` is a pattern (`process-*`). Exact names win, then the latest pattern."""

    def __init__(self) -> None:
        self._exact: dict[str, Mock] = {}
        self._patterns: list[Mock] = []

    def add(self, mock: Mock) -> Mock:
        if any(ch in mock.pattern for ch in "*?["):
            self._patterns.insert(0, mock)
        else:
            self._exact[mock.pattern] = mock
        return mock

    def find(self, name: str) -> Mock | None:
        if name in self._exact:
            return self._exact[name]
        return next((m for m in self._patterns if fnmatch.fnmatchcase(name, m.pattern)), None)

    def get(self, tag: str, default: Callable[..., Any]) -> Callable[..., Any]:
        """The function the executor calls for step `tag` (through `Engine.step_function`)."""
        mock = self.find(tag)
        if mock is None:
            return default

        def mocked(*args: Any) -> Any:
            return mock.respond(lambda: default(*args), args, args[0] if args else None)

        return mocked

    def clear(self) -> None:
        self._exact.clear()
        self._patterns.clear()

    def __bool__(self) -> bool:
        return bool(self._exact or self._patterns)


class _NoLeases:
    """Runs execute one at a time on the test's thread: no leases to renew, and a cancel
    request is read when an execution starts. (The real keeper's thread would share an
    in-memory store's single connection.)"""

    def add(self, journal: Any) -> None:
        pass

    def remove(self, journal: Any) -> None:
        pass

    def stop(self) -> None:
        pass


class RealComponentCall(AssertionError):
    """A component call without a mock, in an env made with ``real_components=False``."""


class SandboxEngine(Engine):
    """An `Engine` whose step functions and component calls can be mocked."""

    def __init__(
        self,
        config: ProjectConfig,
        *,
        store: str,
        clock: Any,
        registry: Registry | None = None,
        real_components: bool = True,
    ) -> None:
        super().__init__(config, store=store, clock=clock, registry=registry)
        self.step_mocks = MockTable()
        self.component_mocks = MockTable()
        self.real_components = real_components
        if store == ":memory:":
            self.leases = _NoLeases()  # type: ignore[assignment]

    def step_function(self, tag: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self.step_mocks.get(tag, fn) if self.step_mocks else fn

    def components_for(self, execution: Any) -> Any:
        runtime = super().components_for(execution)
        mocks = self.component_mocks
        if not mocks and self.real_components:
            return runtime
        real = runtime.dispatch

        def dispatch(label: str, recorded: Any, work: Callable[[], Any]) -> Any:
            mock = mocks.find(label)
            if mock is not None:
                work = _mocked_work(mock, recorded, work)
            elif not self.real_components:
                raise RealComponentCall(
                    f"{label} is not mocked, and this test env makes no real component calls"
                )
            return real(label, recorded, work)

        runtime.dispatch = dispatch
        return runtime


def _mocked_work(mock: Mock, recorded: Any, work: Callable[[], Any]) -> Callable[[], Any]:
    async def mocked() -> Any:
        value = mock.respond(work, (recorded,), recorded)
        if inspect.isawaitable(value):
            value = await value
        return value

    return mocked


# -- run handles ---------------------------------------------------------------------------


class RunHandle:
    """One run in a `WorkflowTestEnv`: read it, signal it, query it, cancel it, wait for its result."""

    def __init__(self, env: WorkflowTestEnv, run_id: str) -> None:
        self.env = env
        self.id = run_id

    @property
    def workflow_id(self) -> str:
        return self.id

    @property
    def run(self) -> Run:
        return self.env.engine.get_run(self.id)

    @property
    def tag(self) -> str:
        return self.run.tag

    @property
    def status(self) -> str:
        return str(self.run.status)

    @property
    def output(self) -> Any:
        return self.run.output

    @property
    def error(self) -> dict[str, Any] | None:
        return self.run.error

    @property
    def waiting(self) -> dict[str, Any] | None:
        """What the run waits for (`kind`: sleep, signal, hook, child...), None once it ended."""
        return self.env.engine.result(self.id).get("waiting")

    def result(self) -> dict[str, Any]:
        """The run's result (the seed's shape), letting virtual time pass first when auto_skip is on."""
        self.env._settle(self.id)
        result = self.env.engine.result(self.id)
        if result["status"] in (RunStatus.RUNNING, RunStatus.PENDING):
            detail = (result.get("waiting") or {}).get("detail") or "executing"
            hint = (
                "send it with handle.signal(...)"
                if self.env.auto_skip
                else "move time with env.advance(...)"
            )
            raise WorkflowStillWaiting(
                f"run {self.id} ({result['workflow_tag']}) has not finished: {detail}; {hint}"
            )
        return result

    def signal(self, name: str, data: Any = None) -> dict[str, Any]:
        """Deliver a signal and let the run (and anything else due) go on until it waits again."""
        self.env.engine.signal(self.id, name, data, continue_inline=False)
        self.env._drain()
        return self.env.engine.result(self.id)

    def query(self, name: str) -> Any:
        return self.env.engine.query(self.id, name)

    def cancel(self, reason: str = "cancelled") -> dict[str, Any]:
        result = self.env.engine.cancel(self.id, reason)
        self.env._drain()
        return result

    def history(self, *types: str) -> list[dict[str, Any]]:
        """The run's events (`ductape history`), optionally only of the given types."""
        return self.env.engine.history(self.id, types=list(types) or None)

    @property
    def journal(self) -> list[dict[str, Any]]:
        """Every journal row (steps, sleeps, signals, checkpoints...) in order, as `ductape status` shows them."""
        journal = self.env.engine.store.load_journal(self.id)
        return [step_view(record) for _, record in sorted(journal.items())]

    @property
    def steps(self) -> dict[str, dict[str, Any]]:
        """The run's steps by tag: status, output, error, attempts, rollback_status..."""
        return {row["tag"]: row for row in self.journal if row["kind"] == OpKind.STEP}

    def step(self, tag: str) -> dict[str, Any]:
        """One step in detail (`ductape step`), with its attempt log."""
        return self.env.engine.step_detail(self.id, tag)

    @property
    def rolled_back_steps(self) -> list[str]:
        return list((self.run.rollback_result or {}).get("rolled_back_steps", []))

    def export(self) -> dict[str, Any]:
        """The run as `ductape history ID --json` exports it (for `replay_history`)."""
        return export_run(self.env.engine, self.id)

    # -- assertions ---------------------------------------------------------------------

    def assert_status(self, *statuses: str) -> None:
        run = self.run
        if str(run.status) not in statuses:
            error = f"; error: {run.error.get('message')}" if run.error else ""
            raise AssertionError(
                f"run {self.id} is {run.status}, expected {' or '.join(statuses)}{error}"
            )

    def assert_rolled_back(self, *tags: str) -> None:
        """Exactly these steps were rolled back, in this order (newest first, as the strategy undoes them)."""
        undone = self.rolled_back_steps
        if undone != list(tags):
            raise AssertionError(
                f"run {self.id} rolled back {undone or 'nothing'}, expected {list(tags) or 'nothing'}"
            )

    def assert_not_rolled_back(self, *tags: str) -> None:
        undone = [t for t in tags if t in self.rolled_back_steps]
        if undone:
            raise AssertionError(f"run {self.id} rolled back {undone}, which should have stayed")

    def __repr__(self) -> str:
        return f"<RunHandle {self.id}>"


# -- the environment -----------------------------------------------------------------------------


def _seconds(duration: float | str | timedelta) -> float:
    """A duration as seconds: a timedelta, or what ductape accepts everywhere (ms ints, "2h")."""
    if isinstance(duration, timedelta):
        return duration.total_seconds()
    return (parse_duration(duration, what="duration") or 0) / 1000


class WorkflowTestEnv:
    """An engine on a scratch store with a virtual clock, for testing workflows.

    `project` is a folder holding ductape.toml (default: found from the cwd) or
    a loaded `ProjectConfig`; its workflows load on first use unless
    `workflows=False`. `store` is ":memory:" (default) or a file path. With
    `real_components=False` a component call without a mock fails its step.
    """

    def __init__(
        self,
        project: str | Path | ProjectConfig | None = None,
        *,
        store: str | Path = ":memory:",
        start: float | str | datetime | None = None,
        auto_skip: bool = True,
        workflows: bool = True,
        real_components: bool = True,
    ) -> None:
        if isinstance(project, ProjectConfig):
            config = project
        else:
            config = load_config(Path(project) if project is not None else None)
        self.clock = VirtualClock(start)
        self.auto_skip = auto_skip
        registry = None if workflows else Registry(folder=config.workflows_dir)
        self.engine = SandboxEngine(
            config,
            store=str(store),
            clock=self.clock,
            registry=registry,
            real_components=real_components,
        )
        self._workflows = workflows

    @property
    def config(self) -> ProjectConfig:
        return self.engine.config

    @property
    def store(self) -> Any:
        return self.engine.store

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- workflows -------------------------------------------------------------------------

    def register(self, *definitions: WorkflowDefinition) -> None:
        """Add workflows defined in the test (they replace project workflows with the same tag)."""
        if self._workflows:
            self.engine.registry()  # discover first, so these win over the project's
        for definition in definitions:
            if not isinstance(definition, WorkflowDefinition):
                raise DefinitionError(
                    f"register() takes workflow definitions (@workflow / define), got {definition!r}"
                )
            self.engine.register(definition)

    def load(self, target: str | Path | ModuleType) -> list[WorkflowDefinition]:
        """Load workflows from a module file, a folder of them, a module, or a dotted module name.

        Loading a file again picks up its edits (e.g. to check a changed
        workflow against a recorded history).
        """
        definitions: list[WorkflowDefinition]
        if isinstance(target, ModuleType):
            definitions = [v for v in vars(target).values() if isinstance(v, WorkflowDefinition)]
        elif isinstance(target, Path) or str(target).endswith(".py") or Path(str(target)).is_dir():
            definitions = self._load_path(Path(target))
        else:
            definitions = [
                v
                for v in vars(importlib.import_module(str(target))).values()
                if isinstance(v, WorkflowDefinition)
            ]
        if not definitions:
            raise DefinitionError(f"no workflows defined in {target}")
        self.register(*definitions)
        return definitions

    def _load_path(self, path: Path) -> list[WorkflowDefinition]:
        path = path.resolve()
        if path.is_dir():
            registry = discover(path)
            if registry.errors:
                raise DefinitionError(f"workflow module failed to import: {registry.errors[0]}")
            return list(registry.by_tag.values())
        if not path.is_file():
            raise DefinitionError(f"no workflow module at {path}")
        folder = self.config.workflows_dir
        if not path.is_relative_to(folder):
            folder = path.parent
        return import_module_file(path, folder).definitions

    # -- runs ----------------------------------------------------------------------------------

    def start(self, tag: str, input: Any = None, **options: Any) -> RunHandle:
        """Start a run and execute it until it first waits; time does not move.

        Options are `Engine.start`'s: env, workflow_id, idempotency_key, timeout,
        context. Anything else due meanwhile (queued runs, signalled runs) runs too.
        """
        run, created = self.engine.start(tag, input, **options)
        if created and not options.get("detach"):
            self.engine.drive(run.id, inline_wait=0.0)
        self._drain()
        return RunHandle(self, run.id)

    def run(self, tag: str, input: Any = None, **options: Any) -> RunHandle:
        """Start a run and, with auto_skip, let virtual time pass until it ends or waits for a signal alone."""
        handle = self.start(tag, input, **options)
        self._settle(handle.id)
        return handle

    def handle(self, run_id: str) -> RunHandle:
        return RunHandle(self, self.engine.get_run(run_id).id)

    def runs(self, tag: str | None = None, status: str | None = None) -> list[RunHandle]:
        """Runs in the store, oldest first (e.g. those a schedule started)."""
        found = self.engine.list_runs(tag=tag, status=status, limit=10_000)
        return [RunHandle(self, r.id) for r in reversed(found)]

    def schedule(self, tag: str, input: Any = None, **options: Any) -> dict[str, Any]:
        """Create a schedule (`ductape dispatch`): at=, in_=, cron=, timezone=, env=, retries=, timeout=."""
        from ductape_cli.engine import schedules

        return schedules.create(self.engine, tag, input, **options)

    # -- time -------------------------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), tz=UTC)

    def advance(self, duration: float | str | timedelta) -> datetime:
        """Move virtual time forward, running every timer, timeout and schedule due on the way."""
        return self.advance_to(self.clock.now() + _seconds(duration))

    def advance_to(self, when: float | str | datetime) -> datetime:
        from ductape_cli.testing.clock import to_epoch

        target = to_epoch(when)
        self._drain()
        for _ in range(_MAX_ROUNDS):
            upcoming = self._next_event()
            if upcoming is None or upcoming > target:
                break
            self._jump(upcoming)
        else:
            raise RuntimeError(
                f"more than {_MAX_ROUNDS} timers fell due while advancing; advance in smaller steps"
            )
        self._jump(target)
        return self.now()

    def run_until_idle(self, limit: float | str | timedelta = "365d") -> datetime:
        """Let virtual time pass until no run waits on a timer (at most `limit` ahead)."""
        horizon = self.clock.now() + _seconds(limit)
        self._drain()
        for _ in range(_MAX_ROUNDS):
            upcoming = self._next_event(runs_only=True)
            if upcoming is None or upcoming > horizon:
                return self.now()
            self._jump(min(upcoming, self._next_event() or upcoming))
        raise RuntimeError(
            f"runs kept waking up {_MAX_ROUNDS} times; is a workflow looping on timers?"
        )

    # -- mocks ----------------------------------------------------------------------------------------

    def mock_step(
        self,
        tag: str,
        *,
        output: Any = _UNSET,
        raises: Any = None,
        fn: Callable[..., Any] | None = None,
        times: int | None = None,
    ) -> Mock:
        """Replace a step's function (tag, or a pattern like "charge-*"). Returns the mock; see `Mock`."""
        return self.engine.step_mocks.add(
            Mock(tag, output=output, raises=raises, fn=fn, times=times)
        )

    def mock_component(self, label: str, **behaviour: Any) -> Mock:
        """Mock component calls by their step label, "kind:name:event" (patterns allowed).

        `fn` gets what the call records (e.g. ``{"app", "event", "input"}``). The
        call still goes through `ductape.toml`'s checks and is journaled as a
        step, exactly like the real one.
        """
        return self.engine.component_mocks.add(Mock(label, **behaviour))

    def mock_action(self, app: str, event: str, **behaviour: Any) -> Mock:
        return self.mock_component(f"action:{app}:{event}", **behaviour)

    def mock_database(self, database: str, event: str, **behaviour: Any) -> Mock:
        return self.mock_component(f"database:{database}:{event}", **behaviour)

    def mock_notification(self, notification: str, event: str, **behaviour: Any) -> Mock:
        return self.mock_component(f"notification:{notification}:{event}", **behaviour)

    def mock_storage(self, storage: str, event: str = "*", **behaviour: Any) -> Mock:
        """`event` is the storage event, or the operation (upload, download, delete) when it has none."""
        return self.mock_component(f"storage:{storage}:{event}", **behaviour)

    def mock_messaging(self, broker: str, topic: str, **behaviour: Any) -> Mock:
        return self.mock_component(f"messaging:{broker}:{topic}", **behaviour)

    def mock_quota(self, quota: str, **behaviour: Any) -> Mock:
        return self.mock_component(f"quota:{quota}", **behaviour)

    def mock_fallback(self, fallback: str, **behaviour: Any) -> Mock:
        return self.mock_component(f"fallback:{fallback}", **behaviour)

    def mock_graph(self, graph: str, operation: str = "*", **behaviour: Any) -> Mock:
        return self.mock_component(f"graph:{graph}:{operation}", **behaviour)

    # -- replay --------------------------------------------------------------------------------------

    def replay_history(self, source: Any) -> ReplayReport:
        """Check the current code against a recorded run: a run id here, an exported dict, or a JSON file."""
        return replay_history(self.engine, source)

    def export(self, run_id: str) -> dict[str, Any]:
        return export_run(self.engine, run_id)

    # -- the scheduler: drive what is due, jump to the next timer ------------------------------------

    def _drain(self) -> None:
        """Fire due schedules and execute every due run until none is due (as a worker would)."""
        from ductape_cli.engine.schedules import fire_due, retry_failed

        engine = self.engine
        for _ in range(_MAX_ROUNDS):
            fire_due(engine, self.clock.now())
            claimed = engine.store.claim_ready(engine.owner, self.clock.now(), engine.lease_ttl, 1)
            if not claimed:
                return
            run = claimed[0]
            result = engine.drive(run.id, inline_wait=0.0)
            if (run.lineage or {}).get("retries_left") and result["status"] in (
                RunStatus.FAILED,
                RunStatus.ROLLED_BACK,
            ):
                retry_failed(engine, run.id)
        raise RuntimeError(
            f"runs were due {_MAX_ROUNDS} times without settling; is a workflow looping?"
        )

    def _settle(self, run_id: str) -> None:
        """Drive what is due; with auto_skip, jump from timer to timer until `run_id` ends or waits on a signal alone."""
        self._drain()
        if not self.auto_skip:
            return
        for _ in range(_MAX_ROUNDS):
            run = self.engine.get_run(run_id)
            if run.status.terminal:
                return
            wake = self._next_wake(run)
            if wake is None or wake <= self.clock.now():
                return  # waits for a signal (or a child that does), or is held elsewhere
            upcoming = self._next_event()
            self._jump(min(wake, upcoming) if upcoming is not None else wake)
        raise RuntimeError(
            f"run {run_id} woke up {_MAX_ROUNDS} times without finishing; is it looping on timers?"
        )

    def _jump(self, when: float) -> None:
        self.clock.advance_to(when)
        self._drain()

    def _next_wake(self, run: Run) -> float | None:
        """The earliest timer of `run` and its unfinished descendants (a parent waits on its children's)."""
        times, pending = [], [run]
        while pending:
            current = pending.pop()
            if current.status.terminal:
                continue
            if current.ready_at is not None:
                times.append(current.ready_at)
            pending.extend(self.engine.store.list_runs(parent_id=current.id, limit=10_000))
        return min(times, default=None)

    def _next_event(self, *, runs_only: bool = False) -> float | None:
        """The next time after now at which a run wakes or a schedule fires."""
        now = self.clock.now()
        times = [
            r.ready_at
            for status in (RunStatus.RUNNING, RunStatus.PENDING)
            for r in self.engine.store.list_runs(status=status, limit=100_000)
            if r.ready_at is not None and r.ready_at > now
        ]
        if not runs_only:
            times.extend(
                due
                for s in self.engine.store.list_schedules()
                if not s.get("paused") and (due := s.get("next_fire_at")) is not None and due > now
            )
        return min(times, default=None)
