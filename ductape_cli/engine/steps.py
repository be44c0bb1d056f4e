"""Running steps: options, attempts with retries and timeouts, conditions, parallel groups."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ductape_cli.ctx import concurrency_problem, duplicate_tag, step_tag_problem
from ductape_cli.durations import parse_duration
from ductape_cli.engine import same_core
from ductape_cli.engine.context import StepCall
from ductape_cli.engine.journal import Frontier, Journal, Suspend
from ductape_cli.errors import InvalidInput, StepError, StepFailed, WorkflowInterrupt
from ductape_cli.models import Attempt, EventType, OpKind, StepRecord, StepStatus
from ductape_cli.store import dumps

log = logging.getLogger("ductape.steps")

# `Engine.step_function`: (tag, the function the handler passed) -> the function the step runs.
StepFunction = Callable[[str, Callable[..., Any]], Callable[..., Any]]

# True while a step function (or rollback handler) runs: component calls made
# there belong to that step; outside, they become steps of their own.
IN_STEP: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ductape_in_step", default=None
)

_SEED_NAMES = {
    "retryDelay": "retry_delay",
    "allowFail": "allow_fail",
    "maxDelay": "max_delay",
    "onError": "on_error",
    "rollbackRetries": "rollback_retries",
    "rollbackRetryDelay": "rollback_retry_delay",
}
_KNOWN = {
    "retries",
    "retry_delay",
    "backoff",
    "max_delay",
    "timeout",
    "allow_fail",
    "critical",
    "on_error",
    "condition",
    "input",
    "rollback_retries",
    "rollback_retry_delay",
}


@dataclass
class StepOptions:
    retries: int = 0
    retry_delay_ms: int = 0
    backoff: float = 1.0
    max_delay_ms: int | None = None
    timeout_ms: int | None = None
    allow_fail: bool = False
    critical: bool = False
    on_error: Callable[..., Any] | None = None
    condition: str | None = None
    input: Any = None
    has_input: bool = False
    rollback_retries: int | None = None  # None: the step's own retries
    rollback_retry_delay_ms: int | None = None  # None: the step's own retry_delay

    @classmethod
    def parse(cls, tag: str, raw: Mapping[str, Any]) -> StepOptions:
        if not raw:
            return _DEFAULT_OPTIONS
        options = cls()
        for key, value in raw.items():
            key = _SEED_NAMES.get(key, key)
            if key not in _KNOWN:
                raise StepError(
                    f"step {tag!r}: unknown option {key!r} (known: {', '.join(sorted(_KNOWN))})"
                )
            try:
                if key in ("retries", "rollback_retries"):
                    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                        raise InvalidInput(f"{key} must be a non-negative integer, got {value!r}")
                    setattr(options, key, value)
                elif key == "retry_delay":
                    options.retry_delay_ms = parse_duration(value, what="retry_delay") or 0
                elif key == "rollback_retry_delay":
                    options.rollback_retry_delay_ms = (
                        parse_duration(value, what="rollback_retry_delay") or 0
                    )
                elif key == "max_delay":
                    options.max_delay_ms = parse_duration(value, what="max_delay")
                elif key == "timeout":
                    options.timeout_ms = parse_duration(value, what="timeout")
                elif key == "backoff":
                    if not isinstance(value, (int, float)) or value < 1:
                        raise InvalidInput(f"backoff must be a number >= 1, got {value!r}")
                    options.backoff = float(value)
                elif key == "input":
                    options.input, options.has_input = value, True
                else:
                    setattr(options, key, value)
            except InvalidInput as exc:
                raise StepError(f"step {tag!r}: {exc.message}") from None
        return options

    @property
    def compensation_retries(self) -> int:
        """How often a failed rollback handler is tried again: rollback_retries, else the step's retries."""
        return self.retries if self.rollback_retries is None else self.rollback_retries

    def delay_ms(self, attempt: int, *, rollback: bool = False) -> int:
        """Delay before retry number `attempt` (1-based): retry_delay × backoff^(attempt-1), capped.

        With `rollback`, the base is rollback_retry_delay when given."""
        base = (
            self.rollback_retry_delay_ms
            if rollback and self.rollback_retry_delay_ms is not None
            else self.retry_delay_ms
        )
        delay = base * (self.backoff ** (attempt - 1))
        if self.max_delay_ms is not None:
            delay = min(delay, self.max_delay_ms)
        return int(delay)

    def stored(self) -> dict[str, Any]:
        """The options worth showing later (`ductape step`), JSON-able."""
        shown: dict[str, Any] = {}
        if self.retries:
            shown["retries"] = self.retries
            shown["retry_delay_ms"] = self.retry_delay_ms
            if self.backoff != 1:
                shown["backoff"] = self.backoff
            if self.max_delay_ms is not None:
                shown["max_delay_ms"] = self.max_delay_ms
        if self.timeout_ms is not None:
            shown["timeout_ms"] = self.timeout_ms
        if self.allow_fail:
            shown["allow_fail"] = True
        if self.condition:
            shown["condition"] = self.condition
        if self.rollback_retries is not None:
            shown["rollback_retries"] = self.rollback_retries
        if self.rollback_retry_delay_ms is not None:
            shown["rollback_retry_delay_ms"] = self.rollback_retry_delay_ms
        return shown


_DEFAULT_OPTIONS = StepOptions()


class StepTimeout(Exception):
    code = "STEP_TIMEOUT"


def error_dict(exc: BaseException, tag: str | None) -> dict[str, Any]:
    message = str(exc) or type(exc).__name__
    code = getattr(exc, "code", None)
    error: dict[str, Any] = {
        "message": message,
        "step": tag,
        "code": code if isinstance(code, str) else "STEP_FAILED",
    }
    error["type"] = type(exc).__name__
    for attr in ("status_code", "body"):
        if hasattr(exc, attr):
            error[attr] = getattr(exc, attr)
    return error


def _encode(tag: str, value: Any) -> tuple[Any, str]:
    """Encode a step output; the handler gets back what the journal will give on replay."""
    if value is None:
        return None, "null"
    try:
        text = dumps(value)
    except (TypeError, ValueError):
        raise StepError(
            f"step {tag!r} returned a {type(value).__name__}, which is not JSON-serialisable; "
            "return dicts, lists, strings, finite numbers, booleans or None"
        ) from None
    if value is None or type(value) in (str, int, float, bool):
        return value, text
    return json.loads(text), text


class StepRunner:
    """Runs `ctx.step` and `ctx.parallel`: options, attempts, conditions, and the step outputs ctx reads."""

    def __init__(self, journal: Journal, step_function: StepFunction) -> None:
        self.journal = journal
        self.clock = journal.clock
        # The testing kit's seam (`Engine.step_function`): the function a step runs.
        self.step_function = step_function
        run = journal.run
        self.run_id = run.id
        self.input = run.input
        self.skip_steps: frozenset[str] = (
            frozenset(run.lineage.get("skip_steps", ())) if run.lineage else frozenset()
        )
        self.tags: set[str] = set()
        self.outputs: dict[str, Any] = {}
        self.completed: list[str] = []
        # Rollback handlers of the steps completed so far, by position (`Rollback` runs them).
        self.rollbacks: dict[int, tuple[Callable[..., Any], StepOptions]] = {}

    async def run(self, call: StepCall) -> Any:
        seq, record = self.prepare(call)
        return await self.execute(call, seq, record)

    def prepare(self, call: StepCall) -> tuple[int, StepRecord | None]:
        if call._consumed:
            raise StepError(
                f"step {call.tag!r} was already awaited; call ctx.step again for a new step"
            )
        call._consumed = True
        tag = call.tag
        if (problem := step_tag_problem(tag)) is not None:
            raise StepError(problem)
        if tag in self.tags:
            raise StepError(duplicate_tag(tag, f"{call.site[0]}:{call.site[1]}"))
        self.tags.add(tag)
        return self.journal.next_op(OpKind.STEP, tag, call.site)

    async def execute(self, call: StepCall, seq: int, record: StepRecord | None) -> Any:
        tag = call.tag
        if record is not None:
            return self._replayed_step(call, record)
        options = StepOptions.parse(tag, call.options)
        if tag in self.skip_steps:
            self._record_skip(call, seq, options, {"reason": "skipped by resume --skip"})
            return None
        # Only the step's own condition decides. What the recorder inferred (branch overrides,
        # scenarios) describes the workflow; the handler reaching this step is the real answer.
        if options.condition and self._check_condition(tag, seq, options.condition, options, call):
            return None
        self.journal.current_step = tag
        self.journal.notify(EventType.STEP_STARTED, tag=tag)
        started = self.clock.now()
        fn = self.step_function(tag, call.fn)
        attempt = 0
        while True:
            attempt += 1
            attempt_start = self.clock.now()
            try:
                output = await self._invoke(fn, options, tag)
                break
            except (WorkflowInterrupt, asyncio.CancelledError):
                raise
            except Exception as exc:  # noqa: BLE001 - any step error counts as a failed attempt
                error = error_dict(exc, tag)
                if isinstance(exc, StepError):
                    raise
                now = self.clock.now()
                if options.on_error is not None:
                    await _call_on_error(options.on_error, exc)
                attempt_row = Attempt(
                    self.run_id,
                    seq,
                    attempt,
                    attempt_start,
                    int((now - attempt_start) * 1000),
                    error,
                )
                if attempt <= options.retries:
                    delay = options.delay_ms(attempt)
                    self.journal.store.record_attempt(
                        attempt_row,
                        self.journal.take_events(
                            (
                                now,
                                EventType.STEP_RETRIED,
                                tag,
                                {"attempt": attempt, "error": error, "delay_ms": delay},
                            )
                        ),
                    )
                    self.journal.notify(
                        EventType.STEP_RETRIED, tag=tag, attempt=attempt, error=error
                    )
                    await self.clock.sleep(delay / 1000)
                    self.journal.boundary()
                    continue
                self.journal.store.record_attempt(attempt_row, ())
                return self._step_failed(call, seq, options, error, attempt, started)
        self.journal.current_step = None
        value, text = _encode(tag, output)
        ended = self.clock.now()
        self.journal.commit(
            self._ran(call, seq, StepStatus.COMPLETED, options, attempt, started, ended, value),
            # No event row: history derives step_started/step_completed from this journal row.
            self.journal.take_events(),
            output_json=text,
            defer=True,  # a run that returns right after records it with its end
        )
        self.journal.event_count += (
            2  # the step_started and step_completed that history derives from the row
        )
        self._remember(call, seq, value)
        self.journal.notify(
            EventType.STEP_COMPLETED, tag=tag, duration_ms=int((ended - started) * 1000)
        )
        return value

    def _ran(
        self,
        call: StepCall,
        seq: int,
        status: StepStatus,
        options: StepOptions,
        attempts: int,
        started: float,
        ended: float,
        output: Any,
        error: dict[str, Any] | None = None,
    ) -> StepRecord:
        """The journal row of a step whose function ran: completed, or failed after its attempts."""
        return StepRecord(
            self.run_id,
            seq,
            OpKind.STEP,
            call.tag,
            status,
            input=options.input,
            output=output,
            error=error,
            attempts=attempts,
            started_at=started,
            ended_at=ended,
            options=options.stored(),
            has_rollback=call.rollback is not None,
            critical=bool(options.critical),
            source=f"{call.site[0]}:{call.site[1]}",
        )

    def _remember(self, call: StepCall, seq: int, value: Any) -> None:
        self.outputs[call.tag] = value
        self.completed.append(call.tag)
        if call.rollback is not None:
            self.rollbacks[seq] = (call.rollback, StepOptions.parse(call.tag, call.options))

    def _replayed_step(self, call: StepCall, record: StepRecord) -> Any:
        status = record.status
        if status == StepStatus.COMPLETED:
            self._remember(call, record.seq, record.output)
            return record.output
        if status == StepStatus.ROLLED_BACK:
            self.outputs[call.tag] = record.output
            self.completed.append(call.tag)
            return record.output
        if status == StepStatus.SKIPPED:
            self.outputs[call.tag] = None
            return None
        error = record.error or {}
        raise StepFailed(
            call.tag, error.get("message") or "step failed", error.get("code"), error.get("type")
        )

    def _step_failed(
        self,
        call: StepCall,
        seq: int,
        options: StepOptions,
        error: dict[str, Any],
        attempts: int,
        started: float,
    ) -> None:
        tag = call.tag
        now = self.clock.now()
        status = StepStatus.SKIPPED if options.allow_fail else StepStatus.FAILED
        events = [
            (started, EventType.STEP_STARTED, tag, None),
            (
                now,
                EventType.STEP_FAILED,
                tag,
                {"error": error, "attempts": attempts, "allow_fail": options.allow_fail},
            ),
        ]
        if options.allow_fail:
            events.append(
                (now, EventType.STEP_SKIPPED, tag, {"reason": "allow_fail", "error": error})
            )
        self.journal.commit(
            self._ran(call, seq, status, options, attempts, started, now, None, error),
            self.journal.take_events(*events),
        )
        self.journal.current_step = None
        self.journal.notify(
            EventType.STEP_FAILED, tag=tag, error=error, allow_fail=options.allow_fail
        )
        if options.allow_fail:
            self.outputs[tag] = None
            return None
        raise StepFailed(tag, error["message"], error.get("code"), error.get("type"))

    def _check_condition(
        self, tag: str, seq: int, condition: str, options: StepOptions, call: StepCall
    ) -> bool:
        """Evaluate a step's condition; when false, journal the step as skipped. Returns skipped?"""
        from ductape_cli import conditions

        try:
            node = conditions.parse(condition)
        except conditions.ConditionSyntaxError as exc:
            raise StepError(f"step {tag!r}: invalid condition: {exc}") from None
        if conditions.evaluate(node, self.input, self.outputs):
            return False
        values = conditions.read_values(node, self.input, self.outputs)
        reason = {"reason": "condition", "condition": conditions.to_text(node), "values": values}
        self._record_skip(call, seq, options, reason)
        return True

    def _record_skip(
        self, call: StepCall, seq: int, options: StepOptions, reason: dict[str, Any]
    ) -> None:
        """Journal a step that will not run (false condition, or skipped by a resume); it returns None."""
        now = self.clock.now()
        self.journal.commit(
            StepRecord(
                self.run_id,
                seq,
                OpKind.STEP,
                call.tag,
                StepStatus.SKIPPED,
                output=None,
                error=None,
                started_at=now,
                ended_at=now,
                options={**options.stored(), "skip": reason},
                source=f"{call.site[0]}:{call.site[1]}",
            ),
            self.journal.take_events((now, EventType.STEP_SKIPPED, call.tag, reason)),
        )
        self.outputs[call.tag] = None
        self.journal.notify(
            EventType.STEP_SKIPPED,
            tag=call.tag,
            condition=reason.get("condition") or reason.get("reason"),
        )

    async def _invoke(self, fn: Callable[..., Any], options: StepOptions, tag: str) -> Any:
        token = IN_STEP.set(tag)
        try:
            args = (options.input,) if options.has_input else ()
            started = self._fenced(fn)
            while True:
                # Checked again where the function starts: a process paused between the step's
                # boundary and here may have lost the run meanwhile (then LostOwnership).
                self.journal.check_lease()
                try:
                    if options.timeout_ms is None:
                        return await call_function(started, args)
                    try:
                        return await asyncio.wait_for(
                            call_function(started, args), options.timeout_ms / 1000
                        )
                    except TimeoutError:
                        raise StepTimeout(
                            f"step {tag!r} timed out after {options.timeout_ms} ms"
                        ) from None
                except _NotStarted:
                    continue  # the lease ran out before the function began: check it again
        finally:
            IN_STEP.reset(token)

    def _fenced(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """`fn`, refusing to begin on its thread once this process's lease may have run out
        (it was paused after the check on the loop); the loop then renews or gives the run up."""
        journal = self.journal
        if journal.lease is None or inspect.iscoroutinefunction(fn):
            return fn  # no lease to lose, or it starts on the loop right after the check

        def begin(*args: Any) -> Any:
            if journal.lease_clock.expired():
                raise _NotStarted()
            return fn(*args)

        return begin

    async def parallel(self, calls: list[Any], concurrency: int | None) -> list[Any]:
        """Start each call in order (so journal positions are stable), run them together."""
        prepared: list[Callable[[], Any]] = []
        for call in calls:
            if isinstance(call, StepCall):
                seq, record = self.prepare(call)
                prepared.append(functools.partial(self.execute, call, seq, record))
            elif hasattr(call, "prepare"):
                prepared.append(call.prepare())
            elif inspect.isawaitable(call):
                prepared.append(functools.partial(_same, call))
            else:
                raise StepError(
                    f"ctx.parallel takes un-awaited ctx.step(...) or ctx.workflow(...) calls, got {call!r}"
                )
        if (problem := concurrency_problem(concurrency)) is not None:
            raise StepError(problem)
        limit = asyncio.Semaphore(concurrency or len(prepared) or 1)

        async def one(start: Callable[[], Any]) -> Any:
            async with limit:
                return await start()

        results = await asyncio.gather(*(one(p) for p in prepared), return_exceptions=True)
        # Cancellation and timeouts outrank failures, which outrank waiting: like
        # Promise.all, a failed branch fails the group even while another waits.
        errors = [r for r in results if isinstance(r, BaseException)]
        waits = [e for e in errors if isinstance(e, (Suspend, Frontier))]
        interrupts = [e for e in errors if isinstance(e, WorkflowInterrupt) and e not in waits]
        failures = [e for e in errors if isinstance(e, Exception)]
        for group in (interrupts, failures, waits, errors):
            if group:
                raise group[0]
        return results


class _NotStarted(Exception):
    """A step function that did not begin: its thread found the lease possibly expired."""


def _same(awaitable: Any) -> Any:
    return awaitable


async def _call_on_error(callback: Callable[..., Any], exc: BaseException) -> None:
    try:
        result = callback(exc)
        if inspect.isawaitable(result):
            await result
    except Exception:  # noqa: BLE001 - an on_error hook must not change the step's outcome
        log.exception("the on_error hook %r raised; the step's own error stands", callback)


async def call_function(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Call a step function or rollback handler: `async def` on the loop, plain `def` in a thread.

    A blocking function must never hold the event loop, or the steps of a parallel
    group would run one after another; a lambda that returns a coroutine is awaited here.
    """
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    result = await in_thread(fn, args)
    if inspect.isawaitable(result):
        result = await result
    return result


class _DaemonThreads:
    """Reusable daemon threads for blocking calls.

    A call never waits for a thread: when none is idle another starts, so a timed-out
    (abandoned) call only keeps its own thread. Daemon, so a stuck call never holds the
    process open; idle threads beyond a few exit, so a burst does not stay resident.
    """

    MAX_IDLE = 8

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1  # that idle thread is now spoken for
        if start:
            threading.Thread(target=self._work, daemon=True, name="ductape-worker").start()
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            self._jobs.get()()
            with self._lock:
                if self._idle >= self.MAX_IDLE:
                    return
                self._idle += 1


_THREADS = _DaemonThreads()
# Blocking calls in flight, per event loop: the testing kit's virtual clock does not jump ahead
# while one runs (it would skip a retry delay that a sibling step has not started yet).
_IN_FLIGHT: dict[asyncio.AbstractEventLoop, int] = {}


def blocking_calls_in_flight(loop: asyncio.AbstractEventLoop) -> int:
    return _IN_FLIGHT.get(loop, 0)


def in_thread(fn: Callable[..., Any], args: tuple[Any, ...]) -> asyncio.Future[Any]:
    """The one bridge from the loop to blocking code: run `fn(*args)` on a daemon thread
    (with the caller's context variables) and settle a future on the running loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()
    # The only call in flight: both threads on this core; more: wherever the scheduler likes.
    alone = not _IN_FLIGHT.get(loop)
    hold = same_core.hold() if alone else same_core.Hold(None, same_core.let_go())

    def settle(result: Any, error: BaseException | None) -> None:
        if not future.done():
            future.set_exception(error) if error is not None else future.set_result(result)

    def job() -> None:
        result: Any = None
        error: BaseException | None = None
        hold.place()
        try:
            result = context.run(fn, *args)
        except BaseException as exc:  # noqa: BLE001 - carried back to the loop
            error = exc
        hold.done()
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the loop closed meanwhile (an abandoned call finishing late): nobody waits

    _IN_FLIGHT[loop] = _IN_FLIGHT.get(loop, 0) + 1

    def landed(_: asyncio.Future[Any]) -> None:
        left = _IN_FLIGHT.get(loop, 1) - 1
        if left > 0:
            _IN_FLIGHT[loop] = left
        else:
            _IN_FLIGHT.pop(loop, None)
            same_core.let_go()

    future.add_done_callback(
        landed
    )  # settled or cancelled (a timeout): either way it no longer holds time
    _THREADS.submit(job)
    return future
