"""`ctx`: what a handler sees. Every effect goes through here to the journal.

Methods that do something durable (`step`, `sleep`, `wait_for_signal`,
`checkpoint`, ...) return awaitables in an ``async def`` handler. In a plain
``def`` handler (which runs in its own thread) they block and return the value.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ductape_cli.engine.transform import Transform
from ductape_cli.store.encoding import dumps

if TYPE_CHECKING:
    from ductape_cli.ctx import Context as ContextContract
    from ductape_cli.engine.execution import Execution
    from ductape_cli.engine.marks import Marks
    from ductape_cli.engine.steps import StepRunner


MAPPING_METHODS = frozenset({"get", "keys", "values", "items", "copy"})


def _code_roots() -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(ductape itself, the standard library, installed packages): where `called_by_library` looks."""
    import os
    import sysconfig

    paths = sysconfig.get_paths()
    ductape = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "")
    stdlib = tuple(os.path.join(paths[k], "") for k in ("stdlib", "platstdlib") if paths.get(k))
    installed = tuple(os.path.join(paths[k], "") for k in ("purelib", "platlib") if paths.get(k))
    return ductape, stdlib, installed


_ROOTS: tuple[str, tuple[str, ...], tuple[str, ...]] | None = (
    None  # on first use: sysconfig is slow
)


def called_by_library(depth: int = 2) -> bool:
    """Whether the caller `depth` frames up is ductape or the standard library (json, copy, pickle),
    which read a mapping's methods, rather than workflow code reading a field. Installed packages
    count as workflow code (a workflow may live in one; they serialise dicts without `.items()`)."""
    global _ROOTS
    filename = sys._getframe(depth).f_code.co_filename
    ductape, stdlib, installed = _ROOTS or (_ROOTS := _code_roots())
    if filename.startswith((ductape, "<frozen")):
        return True
    return filename.startswith(stdlib) and not filename.startswith(installed)


class InputView(dict):
    """The run input with attribute access: ``ctx.input.email`` and ``ctx.input["email"]``.

    One rule for every name: a field that is present is the field, a field that
    is absent is None (the seed's `undefined`, so ``ctx.default(ctx.input.x, 1)``
    works) — also for ``items``, ``get``, ``keys``, ``values`` and ``copy``. The
    dict itself is ``ctx.input.to_dict()`` (or ``dict(ctx.input)``). Library code
    (json, copy, ...) still sees a plain dict's methods.
    """

    def __getattribute__(self, name: str) -> Any:
        if name[:1] == "_" or name == "to_dict":
            return object.__getattribute__(self, name)
        if name in MAPPING_METHODS and called_by_library():
            return object.__getattribute__(self, name)
        if dict.__contains__(self, name):
            return wrap(dict.__getitem__(self, name))
        return None

    def __getitem__(self, key: Any) -> Any:
        return wrap(dict.__getitem__(self, key))

    def to_dict(self) -> dict[str, Any]:
        """The input as a plain dict, with every dict method."""
        return dict(self)


def wrap(value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, InputView):
        return InputView(value)
    if isinstance(value, list):
        return [wrap(v) for v in value]
    return value


class StepCall:
    """A not-yet-started step: awaiting it runs it; `ctx.parallel` runs several at once."""

    __slots__ = ("runner", "tag", "fn", "rollback", "options", "site", "_consumed")

    def __init__(
        self,
        runner: StepRunner,
        tag: str,
        fn: Callable[..., Any],
        rollback: Callable[..., Any] | None,
        options: dict[str, Any],
        site: tuple[str, int],
    ) -> None:
        self.runner = runner
        self.tag = tag
        self.fn = fn
        self.rollback = rollback
        self.options = options
        self.site = site
        self._consumed = False

    def __await__(self) -> Any:
        return self.runner.run(self).__await__()

    def __repr__(self) -> str:
        return f"<step {self.tag!r}>"


class Done:
    """What a ctx call that is finished when it returns gives an async handler: awaiting it
    yields None, and not awaiting it is fine too (it is no coroutine, so nothing warns)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # a generator that finishes at once

    def __repr__(self) -> str:
        return "<done>"


DONE = Done()


def done(execution: Execution) -> Any:
    """None in a plain `def` handler; an awaitable None in an `async def` one."""
    return DONE if execution.definition.is_async else None


class Log:
    """`ctx.log.info("msg", {...})`: stored as history events, not repeated on replay."""

    def __init__(self, marks: Marks, is_async: bool) -> None:
        self._marks = marks
        self._done = DONE if is_async else None

    def _emit(self, level: str, message: str, data: Any = None, **fields: Any) -> Any:
        payload = (
            dict(data) if isinstance(data, Mapping) else ({} if data is None else {"data": data})
        )
        payload.update(fields)
        self._marks.log(level, str(message), payload)
        return self._done

    def debug(self, message: str, data: Any = None, **fields: Any) -> Any:
        return self._emit("debug", message, data, **fields)

    def info(self, message: str, data: Any = None, **fields: Any) -> Any:
        return self._emit("info", message, data, **fields)

    def warn(self, message: str, data: Any = None, **fields: Any) -> Any:
        return self._emit("warn", message, data, **fields)

    warning = warn

    def error(self, message: str, data: Any = None, **fields: Any) -> Any:
        return self._emit("error", message, data, **fields)


def _site(depth: int = 2) -> tuple[str, int]:
    frame = sys._getframe(depth)
    return frame.f_code.co_filename, frame.f_lineno


class Context:
    """The handler's view of its run (see DESIGN §1 for the full list)."""

    def __init__(self, execution: Execution) -> None:
        self._x = execution
        self._step_calls: list[StepCall] = []
        run = execution.journal.run
        self.workflow_id: str = run.id
        self.workflow_tag: str = run.tag
        self.env: str | None = run.env
        self.product: str = execution.product
        self.input: Any = wrap(run.input)
        self.context: dict[str, Any] = dict(run.context or {})
        self.parent_id: str | None = run.parent_id
        self.is_replay: bool = run.replayed_from is not None
        self.replayed_from: str | None = run.replayed_from
        self.replay_reason: str | None = run.lineage.get("replay_reason") if run.lineage else None
        self.restarted_from: str | None = run.restarted_from
        self.log = Log(execution.marks, execution.definition.is_async)
        self.transform = Transform(execution.marks)

    # -- read-only views ---------------------------------------------------

    @property
    def steps(self) -> dict[str, Any]:
        return self._x.steps.outputs

    @property
    def completed_steps(self) -> list[str]:
        return list(self._x.steps.completed)

    @property
    def current_step(self) -> str | None:
        return self._x.journal.current_step

    @property
    def state(self) -> dict[str, Any]:
        return self._x.journal.state

    @property
    def checkpoint_name(self) -> str | None:
        checkpoint = self._x.marks.checkpoint
        return checkpoint[0] if checkpoint else None

    @property
    def checkpoint_data(self) -> Any:
        checkpoint = self._x.marks.checkpoint
        return checkpoint[1] if checkpoint else None

    @property
    def is_restored(self) -> bool:
        return self._x.marks.restored is not None

    @property
    def restored_checkpoint(self) -> dict[str, Any] | None:
        return self._x.marks.restored

    # -- state -------------------------------------------------------------

    def set_state(self, key: str, value: Any) -> Any:
        try:
            dumps(value)  # as the store will write it: no NaN or Infinity either
        except (TypeError, ValueError):
            raise TypeError(
                f"state {key!r} must be JSON-serialisable (no NaN or Infinity), got {type(value).__name__}"
            ) from None
        journal = self._x.journal
        journal.state[key] = value
        journal.state_dirty = True
        return done(self._x)

    def get_state(self, key: str, default: Any = None) -> Any:
        return self._x.journal.state.get(key, default)

    setState = set_state  # noqa: N815 - the seed's spelling
    getState = get_state  # noqa: N815

    # -- helpers -------------------------------------------------------------

    @staticmethod
    def default(value: Any, fallback: Any) -> Any:
        return fallback if value is None else value

    def variable(self, app: str, key: str) -> Any:
        return self._x.components().variable(app, key)

    def constant(self, app: str, key: str) -> Any:
        return self._x.components().constant(app, key)

    # -- durable operations -----------------------------------------------------

    def step(
        self,
        tag: str,
        fn: Callable[..., Any],
        rollback: Callable[..., Any] | None = None,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run `fn` once per run; later executions get its journaled output.

        Options (keyword or an `options` mapping with the seed's names): retries,
        retry_delay, backoff, max_delay, timeout, allow_fail, critical, on_error,
        condition, input.
        """
        merged = dict(options or {})
        merged.update(kwargs)
        call = StepCall(self._x.steps, tag, fn, rollback, merged, _site())
        delivered = self._x.deliver(call)
        if delivered is call:  # an async handler must await it; checked when the handler returns
            self._step_calls.append(call)
        return delivered

    def never_awaited(self) -> list[StepCall]:
        """Steps the handler made but never awaited (nor passed to ctx.parallel): they never ran."""
        return [call for call in self._step_calls if not call._consumed]

    def parallel(self, calls: Iterable[Any], *, concurrency: int | None = None) -> Any:
        """Run not-yet-awaited step (or child workflow) calls concurrently; results in order."""
        return self._x.deliver(self._x.steps.parallel(list(calls), concurrency))

    def sleep(self, duration: int | float | str, *, name: str | None = None) -> Any:
        return self._x.deliver(self._x.waits.sleep(duration, name, _site()))

    def wait_for_signal(
        self,
        names: str | list[str],
        options: Mapping[str, Any] | None = None,
        *,
        timeout: int | str | None = None,
    ) -> Any:
        if timeout is None and options:
            timeout = options.get("timeout")
        return self._x.deliver(self._x.waits.wait_for_signal(names, timeout, _site()))

    waitForSignal = wait_for_signal  # noqa: N815

    def checkpoint(self, name: str, data: Any = None) -> Any:
        return self._x.deliver(self._x.marks.record_checkpoint(name, data, _site()))

    def trigger_rollback(self, reason: str = "manual rollback") -> Any:
        return self._x.deliver(self._x.rollback.trigger(reason, _site()))

    triggerRollback = trigger_rollback  # noqa: N815

    def patched(self, change_id: str) -> bool:
        """True where new code may run (new runs), False for runs whose journal predates the change."""
        return self._x.journal.patched(change_id, _site())

    def workflow(
        self,
        child_id: str,
        tag: str,
        input: Any = None,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Start child workflow `tag` as run `child_id` and wait for its output."""
        merged = dict(options or {})
        merged.update(kwargs)
        return self._x.deliver(self._x.children.call(child_id, tag, input, merged, _site()))

    def create_hook(self, name: str, data: Any = None) -> Any:
        """A single-use token an outsider passes to `ductape hook TOKEN`; await `hook.wait()`."""
        return self._x.deliver(self._x.waits.create_hook(name, data, _site()))

    def emit_event(self, type: str, payload: Any = None) -> Any:
        """Append a custom event (`ductape events ID`); await it or not in an async handler."""
        self._x.marks.emit_custom(type, payload)
        return done(self._x)

    def now(self) -> datetime:
        """Journaled current time (the same value on every replay)."""
        ms = self.transform.now()
        return datetime.fromtimestamp(ms / 1000, tz=UTC)

    # -- components (declared in ductape.toml) ---------------------------------

    @property
    def action(self) -> Any:
        return self._x.component("action")

    @property
    def database(self) -> Any:
        return self._x.component("database")

    @property
    def notification(self) -> Any:
        return self._x.component("notification")

    @property
    def storage(self) -> Any:
        return self._x.component("storage")

    @property
    def messaging(self) -> Any:
        return self._x.component("messaging")

    publish = messaging

    @property
    def quota(self) -> Any:
        return self._x.component("quota")

    @property
    def fallback(self) -> Any:
        return self._x.component("fallback")

    @property
    def graph(self) -> Any:
        return self._x.component("graph")


if TYPE_CHECKING:  # mypy checks the engine's context against the contract handlers are written to

    def _conforms(ctx: Context) -> ContextContract:
        return ctx
