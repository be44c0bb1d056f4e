"""Recording mode: run a handler without running anything, and note what it would do.

The compiler hands the handler a `RecordingContext`. No step function, rollback
or component runs. `ctx.input` holds `record_input` (or a scenario) where given
and `$Input{path}` placeholders elsewhere; a step's result is its
`branch_overrides` entry or a `$Step{tag}` placeholder. A placeholder can be
printed, formatted into strings and drilled into (``result["id"]``), but using
it as a real value (a truth test, a comparison, arithmetic) raises
`PlaceholderUsed`, so recording never silently follows a made-up branch.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ductape_cli import conditions
from ductape_cli.ctx import Context as ContextContract
from ductape_cli.ctx import (
    checkpoint_name_problem,
    concurrency_problem,
    duplicate_tag,
    signal_names,
    step_tag_problem,
    undeclared_signals,
)
from ductape_cli.durations import parse_duration
from ductape_cli.engine.transform import Transform
from ductape_cli.errors import DuctapeError, InvalidInput
from ductape_cli.placeholders import (
    Placeholder,
    RecordedMapping,
    _wrap,
    to_json,
)
from ductape_cli.shapes import call_node, call_shape
from ductape_cli.sites import display_path

MAX_OPS = 10_000  # a handler looping forever on ctx calls stops here
RECORD_TIMEOUT = 10.0  # seconds; a handler blocking outside ctx stops here

_PACKAGE_DIRS = tuple({str(Path(__file__).resolve().parent), str(Path(__file__).parent)})


# -- errors ---------------------------------------------------------------------------


class RecordingError(DuctapeError):
    """A mistake the recording context caught at a ctx call (bad duration, duplicate tag...)."""

    def __init__(self, message: str, site: str | None = None) -> None:
        super().__init__(message)
        self.site = site


class HandlerFailed(Exception):
    """What the handler raised while recording (`error`), with what was recorded until then."""

    def __init__(self, error: BaseException, recording: Recording) -> None:
        super().__init__(str(error))
        self.error = error
        self.recording = recording


class RecordingLimit(BaseException):
    """Too many operations, or too long: a BaseException so ``except Exception`` cannot hide it."""

    def __init__(self, message: str = "recording stopped", site: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.site = site


# -- what a recording produces --------------------------------------------------------------


@dataclass
class Op:
    """One recorded operation. `implied` holds conditions from branch overrides in force."""

    kind: str
    key: str  # identifies the op across scenario recordings
    label: str  # the step tag, signal names, sleep name...
    data: dict[str, Any]
    source: str
    implied: list[conditions.Node] = field(default_factory=list)
    dynamic: bool = False


@dataclass
class Recording:
    ops: list[Op] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    overrides_used: set[str] = field(default_factory=set)


# -- the recorder ------------------------------------------------------------------------------


def user_frame() -> FrameType | None:
    """The nearest frame outside ductape_cli: the user's ctx call."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIRS):
        frame = frame.f_back
    return frame


def call_site(frame: FrameType | None = None) -> str:
    """``file:line`` of the user's ctx call."""
    frame = frame or user_frame()
    if frame is None:
        return "<unknown>:0"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


class Recorder:
    """Collects ops for one recording and hands out results."""

    def __init__(
        self, tag: str, overrides: Mapping[str, Any], signals: Mapping[str, Any], is_async: bool
    ) -> None:
        self.workflow_tag = tag
        self.overrides = overrides
        self.signals = signals
        self.is_async = is_async
        self.recording = Recording()
        self.iterating = 0
        self.implied: list[conditions.Node] = []
        self.tags: set[str] = set()
        self.counts: dict[str, int] = {}
        self.results: dict[str, Any] = {}
        self.completed: list[str] = []
        self.parallel_group: str | None = None
        self.parallel_groups = 0
        self._warned: set[str] = set()
        self.step_calls: list[tuple[Pending, str, str]] = []  # to warn about steps never awaited

    def warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.recording.warnings.append(message)

    def fail(self, site: str, message: str) -> RecordingError:
        return RecordingError(message, site)

    def add(
        self, kind: str, label: str, data: dict[str, Any], site: str, dynamic: bool = False
    ) -> Op:
        if len(self.recording.ops) >= MAX_OPS:
            raise RecordingLimit(
                f"recorded more than {MAX_OPS} operations; does the handler loop forever? "
                "(loops over placeholders record nothing; give sample data with record_input)",
                site,
            )
        if kind == "step":
            key = f"step:{label}"
        else:
            count = self.counts.get(f"{kind}:{label}", 0)
            self.counts[f"{kind}:{label}"] = count + 1
            key = f"{kind}:{label}#{count}"
        if self.parallel_group is not None:
            data["parallel"] = self.parallel_group
        op = Op(kind, key, label, data, site, list(self.implied), dynamic)
        self.recording.ops.append(op)
        return op

    def override_for(self, name: str, root: str, origin: Placeholder | None = None) -> Any:
        """The override for `name` wrapped for attribute access, or a placeholder."""
        if origin is None:
            origin = Placeholder(root, name, (), self)
        if name in self.overrides:
            self.recording.overrides_used.add(name)
            return _wrap(self.overrides[name], origin)
        return origin

    def deliver(self, resolve: Callable[[], Any]) -> Any:
        """What a ctx method returns: an awaitable in an async handler, the value in a sync one."""
        if self.is_async:
            return Pending(resolve)
        return resolve()


class Pending:
    """An un-awaited recorded call: awaiting it (or passing it to ctx.parallel) records it."""

    __slots__ = ("_resolve", "_done", "_value")

    def __init__(self, resolve: Callable[[], Any]) -> None:
        self._resolve = resolve
        self._done = False
        self._value: Any = None

    def resolve(self) -> Any:
        if not self._done:
            self._value = self._resolve()
            self._done = True
        return self._value

    def __await__(self) -> Any:
        return _immediate(self.resolve()).__await__()


async def _immediate(value: Any) -> Any:
    return value


def override_conditions(tag: str, value: Any) -> list[conditions.Node]:
    """``$Step{tag}{field} == value`` for each scalar leaf of an override."""
    found: list[conditions.Node] = []

    def walk(item: Any, path: tuple[str, ...]) -> None:
        if isinstance(item, Mapping):
            for key, inner in item.items():
                walk(inner, (*path, str(key)))
        elif item is None or isinstance(item, (bool, int, float, str)):
            try:
                found.append(
                    conditions.Compare(
                        "==", conditions.StepRef(tag, path), conditions.Literal(item)
                    )
                )
            except (ValueError, TypeError):
                pass  # a field name or value the condition language cannot spell: no condition for it

    walk(value, ())
    return found


# -- the context ------------------------------------------------------------------------------------


class _Log:
    def debug(self, message: Any, data: Any = None, **fields: Any) -> None:
        pass

    info = warn = warning = error = debug


class _RecordingTransform(Transform):
    def __init__(self) -> None:
        super().__init__(None)  # type: ignore[arg-type]

    def now(self) -> int:
        return int(datetime.now(tz=UTC).timestamp() * 1000)

    def uuid(self) -> str:
        return "00000000-0000-4000-8000-000000000000"

    def random(self) -> float:
        return 0.5


class _Component:
    """``ctx.action.run(...)`` and friends: recorded with their arguments, never called."""

    def __init__(self, recorder: Recorder, kind: str, method: str = "") -> None:
        self._recorder = recorder
        self._kind = kind
        self._method = method

    def __getattr__(self, name: str) -> _Component:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Component(
            self._recorder, self._kind, f"{self._method}.{name}" if self._method else name
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        frame = user_frame()
        site = call_site(frame)
        rec = self._recorder
        label = f"{self._kind}.{self._method}"
        # Only the call's shape: argument values may hold secrets or megabytes (see shapes).
        recorded = call_shape(args, kwargs, call_node(frame))
        del frame

        def resolve() -> Any:
            data: dict[str, Any] = {"component": self._kind, "method": self._method, **recorded}
            rec.add("component", label, data, site)
            return Placeholder(self._kind.capitalize(), self._method, (), rec)

        return rec.deliver(resolve)


class _Hook:
    def __init__(self, recorder: Recorder, name: str, data: Any) -> None:
        self._recorder = recorder
        self.name = name
        self.data = data
        self.token = Placeholder("Hook", name, ("token",), recorder)

    def wait(self, timeout: int | str | None = None) -> Any:
        site = call_site()
        rec = self._recorder
        timeout_ms = _duration(rec, timeout, "hook timeout", site)

        def resolve() -> Any:
            rec.add(
                "signal",
                f"hook:{self.name}",
                {"hook": self.name, "signals": [], "timeout_ms": timeout_ms},
                site,
            )
            return rec.override_for(
                f"hook:{self.name}", "Hook", Placeholder("Hook", self.name, ("payload",), rec)
            )

        return rec.deliver(resolve)

    def to_dict(self) -> dict[str, Any]:
        return {"token": str(self.token), "name": self.name, "data": to_json(self.data)}


def _duration(rec: Recorder, value: Any, what: str, site: str) -> int | str | None:
    """Literal durations are checked now; placeholders are kept as text."""
    if isinstance(value, Placeholder):
        return value.text()
    try:
        return parse_duration(value, what=what)
    except InvalidInput as exc:
        raise rec.fail(site, exc.message) from None


class RecordingContext:
    """Mirrors `ductape_cli.engine.context.Context` without running or storing anything."""

    def __init__(self, recorder: Recorder, input: Mapping[str, Any], workflow_tag: str) -> None:
        self._r = recorder
        self.workflow_id: Any = Placeholder("Workflow", None, ("id",), recorder)
        self.workflow_tag = workflow_tag
        self.env: str | None = None
        self.product: str | None = None
        self.input: Any = RecordedMapping(input, Placeholder("Input", None, (), recorder))
        self.context: dict[str, Any] = {}
        self.parent_id: str | None = None
        self.is_replay = False
        self.replayed_from: str | None = None
        self.replay_reason: str | None = None
        self.restarted_from: str | None = None
        self.is_restored = False
        self.restored_checkpoint: dict[str, Any] | None = None
        self.checkpoint_name: str | None = None
        self.checkpoint_data: Any = None
        self.current_step: str | None = None
        self.state: dict[str, Any] = {}
        self.log = _Log()
        self.transform = _RecordingTransform()

    @property
    def steps(self) -> dict[str, Any]:
        return dict(self._r.results)

    @property
    def completed_steps(self) -> list[str]:
        return list(self._r.completed)

    def set_state(self, key: str, value: Any) -> None:
        self.state[key] = value

    def get_state(self, key: str, default: Any = None) -> Any:
        return self.state.get(key, default)

    setState = set_state  # noqa: N815
    getState = get_state  # noqa: N815

    @staticmethod
    def default(value: Any, fallback: Any) -> Any:
        return fallback if value is None else value

    def variable(self, app: str, key: str) -> Any:
        return Placeholder("Variable", str(app), (str(key),), self._r)

    def constant(self, app: str, key: str) -> Any:
        return Placeholder("Constant", str(app), (str(key),), self._r)

    def now(self) -> datetime:
        return datetime.now(tz=UTC)

    # -- steps ----------------------------------------------------------------------------

    def step(
        self,
        tag: Any,
        fn: Callable[..., Any] | None = None,
        rollback: Callable[..., Any] | None = None,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        site = call_site()
        rec = self._r
        dynamic = (
            rec.iterating > 0
            or isinstance(tag, Placeholder)
            or "$Input{" in str(tag)
            or "$Step{" in str(tag)
        )
        if isinstance(tag, Placeholder):
            tag = tag.text()
        if (problem := step_tag_problem(tag)) is not None:
            raise rec.fail(site, problem)
        if fn is None or not callable(fn):
            raise rec.fail(site, f"step {tag!r} needs a function to run, got {fn!r}")
        if rollback is not None and not callable(rollback):
            raise rec.fail(site, f"step {tag!r}: rollback must be a function, got {rollback!r}")
        merged = dict(options or {})
        merged.update(kwargs)
        data = _step_data(rec, tag, merged, rollback is not None, site)

        def resolve() -> Any:
            if tag in rec.tags:
                raise rec.fail(site, duplicate_tag(tag))
            rec.tags.add(tag)
            rec.add("step", tag, dict(data), site, dynamic)
            result = rec.override_for(tag, "Step")
            rec.results[tag] = result
            rec.completed.append(tag)
            if tag in rec.overrides:
                rec.implied.extend(override_conditions(tag, rec.overrides[tag]))
            return result

        delivered = rec.deliver(resolve)
        if isinstance(delivered, Pending):
            rec.step_calls.append((delivered, tag, site))
        return delivered

    def parallel(self, calls: Iterable[Any], *, concurrency: int | None = None) -> Any:
        rec = self._r
        site = call_site()
        calls = list(calls)
        if (problem := concurrency_problem(concurrency)) is not None:
            raise rec.fail(site, problem)

        def resolve() -> list[Any]:
            rec.parallel_groups += 1
            previous, rec.parallel_group = rec.parallel_group, f"p{rec.parallel_groups}"
            try:
                return [call.resolve() if isinstance(call, Pending) else call for call in calls]
            finally:
                rec.parallel_group = previous

        return rec.deliver(resolve)

    # -- waits -------------------------------------------------------------------------------

    def sleep(self, duration: Any, *, name: str | None = None) -> Any:
        site = call_site()
        rec = self._r
        ms = _duration(rec, duration, "sleep duration", site)
        if ms is None:
            raise rec.fail(site, "ctx.sleep needs a duration, e.g. ctx.sleep('5s')")

        def resolve() -> None:
            data: dict[str, Any] = {"name": name}
            data["duration_ms" if isinstance(ms, int) else "duration"] = ms
            rec.add("sleep", name or "sleep", data, site)

        return rec.deliver(resolve)

    def wait_for_signal(
        self,
        names: Any,
        options: Mapping[str, Any] | None = None,
        *,
        timeout: int | str | None = None,
    ) -> Any:
        site = call_site()
        rec = self._r
        wanted = signal_names(names)
        if wanted is None:
            raise rec.fail(site, f"wait_for_signal needs one or more signal names, got {names!r}")
        if unknown := undeclared_signals(wanted, rec.signals or ()):
            declared = ", ".join(sorted(rec.signals))
            raise rec.fail(
                site,
                f"wait_for_signal({unknown[0]!r}): the workflow declares no such signal (declared: {declared})",
            )
        if timeout is None and options:
            timeout = options.get("timeout")
        timeout_ms = _duration(rec, timeout, "signal timeout", site)
        label = ",".join(wanted)

        def resolve() -> Any:
            rec.add("signal", label, {"signals": wanted, "timeout_ms": timeout_ms}, site)
            # An override may name the whole wait ("approved,rejected") or one signal ("approved").
            chosen = (
                next((n for n in wanted if n in rec.overrides), None)
                if label not in rec.overrides
                else None
            )
            if chosen is None or len(wanted) == 1:
                return rec.override_for(
                    chosen or label, "Signal", Placeholder("Signal", label, (), rec)
                )
            rec.recording.overrides_used.add(chosen)
            value = rec.overrides[chosen]
            tagged = (
                {**value, "_signal": chosen}
                if isinstance(value, Mapping)
                else {"_signal": chosen, "value": value}
            )
            return _wrap(tagged, Placeholder("Signal", label, (), rec))

        return rec.deliver(resolve)

    waitForSignal = wait_for_signal  # noqa: N815

    def create_hook(self, name: str, data: Any = None) -> Any:
        site = call_site()
        rec = self._r

        def resolve() -> _Hook:
            rec.add("hook", str(name), {"name": str(name), "data": to_json(data)}, site)
            return _Hook(rec, str(name), data)

        return rec.deliver(resolve)

    # -- other durable operations ---------------------------------------------------------------

    def checkpoint(self, name: str, data: Any = None) -> Any:
        site = call_site()
        rec = self._r
        if (problem := checkpoint_name_problem(name)) is not None:
            raise rec.fail(site, problem)

        def resolve() -> None:
            rec.add("checkpoint", name, {"name": name, "data": to_json(data)}, site)
            self.checkpoint_name, self.checkpoint_data = name, data

        return rec.deliver(resolve)

    def trigger_rollback(self, reason: str = "manual rollback") -> Any:
        site = call_site()
        rec = self._r

        def resolve() -> Any:
            rec.add("rollback", "rollback", {"reason": to_json(reason)}, site)
            return Placeholder("Rollback", None, (), rec)

        return rec.deliver(resolve)

    triggerRollback = trigger_rollback  # noqa: N815

    def patched(self, change_id: str) -> bool:
        """New runs take the new path, so recording does too."""
        self._r.add("patch", str(change_id), {"change_id": str(change_id)}, call_site())
        return True

    def workflow(
        self,
        child_id: Any,
        tag: str,
        input: Any = None,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        site = call_site()
        rec = self._r
        if isinstance(tag, Placeholder):
            tag = (
                tag.text()
            )  # a child tag chosen at run time (from the input or a step) is recorded as its source
        if not isinstance(tag, str) or not tag:
            raise rec.fail(site, f"ctx.workflow needs a child workflow tag, got {tag!r}")
        merged = dict(options or {})
        merged.update(kwargs)
        child = to_json(child_id)

        def resolve() -> Any:
            data = {
                "workflow": tag,
                "child_id": child,
                "input": to_json(input),
                "options": to_json(merged),
            }
            rec.add("child", tag, data, site)
            return rec.override_for(str(child), "Child")

        return rec.deliver(resolve)

    def emit_event(self, type: str, payload: Any = None) -> None:
        self._r.add(
            "event", str(type), {"type": str(type), "payload": to_json(payload)}, call_site()
        )

    # -- components: each call is recorded with its shape ----------------------------------------

    @property
    def action(self) -> Any:
        return _Component(self._r, "action")

    @property
    def database(self) -> Any:
        return _Component(self._r, "database")

    @property
    def notification(self) -> Any:
        return _Component(self._r, "notification")

    @property
    def storage(self) -> Any:
        return _Component(self._r, "storage")

    @property
    def messaging(self) -> Any:
        return _Component(self._r, "messaging")

    publish = messaging

    @property
    def quota(self) -> Any:
        return _Component(self._r, "quota")

    @property
    def fallback(self) -> Any:
        return _Component(self._r, "fallback")

    @property
    def graph(self) -> Any:
        return _Component(self._r, "graph")


if TYPE_CHECKING:  # mypy checks the recorder against the contract handlers are written to

    def _conforms(ctx: RecordingContext) -> ContextContract:
        return ctx


def _step_data(
    rec: Recorder, tag: str, raw: dict[str, Any], has_rollback: bool, site: str
) -> dict[str, Any]:
    """Check a step's options as the executor will, and keep them JSON-able with durations in ms."""
    from ductape_cli.engine.steps import StepOptions

    condition = raw.get("condition")
    # Option values known only at run time (retries=ctx.input.retries) are kept as their text.
    runtime = {
        k: v.text()
        for k, v in raw.items()
        if isinstance(v, Placeholder) and k not in ("condition", "input")
    }
    checked = {k: v for k, v in raw.items() if k != "condition" and k not in runtime}
    try:
        parsed = StepOptions.parse(tag, checked)
    except DuctapeError as exc:
        raise rec.fail(site, exc.message) from None
    explicit = None
    if condition is not None:
        if not isinstance(condition, str):
            raise rec.fail(
                site,
                f"step {tag!r}: condition must be a string like \"$Input{{role}} != 'guest'\", got {condition!r}",
            )
        try:
            explicit = conditions.parse(condition)
        except conditions.ConditionSyntaxError as exc:
            raise RecordingError(f"step {tag!r}: invalid condition: {exc}", site) from None
    # The same normalised options the executor stores; allow_fail and the condition are kept apart here.
    options = {k: v for k, v in parsed.stored().items() if k not in ("allow_fail", "condition")}
    if parsed.on_error is not None:
        options["on_error"] = True
    if parsed.has_input:
        options["input"] = to_json(parsed.input)
    options.update(runtime)
    return {
        "options": options,
        "has_rollback": has_rollback,
        "critical": bool(parsed.critical),
        "allow_fail": bool(parsed.allow_fail),
        "explicit": explicit,
    }


# -- running a recording ------------------------------------------------------------------------------


def record(
    handler: Callable[..., Any],
    *,
    tag: str,
    input: Mapping[str, Any],
    overrides: Mapping[str, Any],
    signals: Mapping[str, Any],
    is_async: bool,
    timeout: float | None = None,
) -> Recording:
    """Run `handler` once in recording mode; `HandlerFailed` carries what it raised, if anything."""
    recorder = Recorder(tag, overrides, signals, is_async)
    ctx = RecordingContext(recorder, input, tag)
    outcome: dict[str, Any] = {}
    loop_box: dict[str, Any] = {}

    def target() -> None:
        try:
            if is_async:
                loop = asyncio.new_event_loop()
                loop_box["loop"] = loop
                try:
                    task = loop.create_task(handler(ctx))
                    loop_box["task"] = task
                    loop.run_until_complete(task)
                finally:
                    loop.close()
            else:
                result = handler(ctx)
                if asyncio.iscoroutine(result):  # a def returning a coroutine
                    asyncio.run(result)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    # A thread lets a handler that blocks outside ctx time out instead of hanging define.
    thread = threading.Thread(target=target, name=f"ductape-record-{tag}", daemon=True)
    thread.start()
    thread.join(RECORD_TIMEOUT if timeout is None else timeout)
    if thread.is_alive():
        _stop(thread, loop_box)
        raise HandlerFailed(
            RecordingLimit(
                f"recording did not finish within {RECORD_TIMEOUT if timeout is None else timeout:g}s; "
                "does the handler wait on something outside ctx, or loop forever?"
            ),
            recorder.recording,
        )
    for pending, step_tag, site in recorder.step_calls:
        if not pending._done:
            recorder.warn_once(
                f"step {step_tag!r} at {display_path(site)} is never awaited, so it would never run: "
                f"write `await ctx.step({step_tag!r}, ...)`"
            )
    if "error" in outcome:
        raise HandlerFailed(outcome["error"], recorder.recording)
    return recorder.recording


def _stop(thread: threading.Thread, loop_box: dict[str, Any]) -> None:
    """Best effort to end a recording thread that overran: cancel its task, interrupt its loop."""
    loop, task = loop_box.get("loop"), loop_box.get("task")
    if loop is not None and task is not None and not loop.is_closed():
        try:
            loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:
            pass
    if thread.ident is not None:
        # Raises RecordingLimit inside the thread at its next bytecode, ending a busy loop.
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(RecordingLimit)
        )


def json_dumps(value: Any) -> str:
    return json.dumps(to_json(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
