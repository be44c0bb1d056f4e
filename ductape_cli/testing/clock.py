"""A virtual clock: the engine's waits move it forward instantly instead of waiting.

It has the same three methods as `SystemClock` (`now`, `sleep`, `block`) plus
`call_later`, and `advance` / `advance_to` for the test to move time itself.
Nothing here waits for real time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Waiting for something already due still takes a moment on a real clock; the
# virtual one moves this much, so "past the deadline" (a strict >) is reached.
TICK = 0.001

# Event-loop turns a sleeper waits before time jumps, so that sibling tasks
# (parallel steps retrying together) can register their own sleeps first.
_SETTLE_TURNS = 3


def to_epoch(value: float | str | datetime | None) -> float:
    """Epoch seconds from a number, a datetime (naive means UTC) or an ISO 8601 string."""
    if value is None:
        return time.time()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    raise TypeError(f"cannot read a time from {value!r}")


@dataclass(order=True)
class _Timer:
    when: float
    order: int
    loop: asyncio.AbstractEventLoop = field(compare=False)
    callback: Callable[..., Any] = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """Time that only moves when something waits on it (or the test says so).

    `sleep(s)` and `block(s)` move time forward by `s` at once; `call_later`
    callbacks fire when time passes their due time. Thread-safe: child
    workflows run on helper threads with their own event loops.
    """

    def __init__(self, start: float | str | datetime | None = None) -> None:
        self._now = to_epoch(start)
        self._lock = threading.RLock()
        self._order = itertools.count()
        self._timers: list[_Timer] = []
        self._sleepers: dict[
            asyncio.AbstractEventLoop, list[tuple[float, int, asyncio.Future[None]]]
        ] = {}

    # -- the clock interface the engine uses ------------------------------------------

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Resume once virtual time reaches now + `seconds` (jumping there when nothing else runs)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            sleepers = self._sleepers.setdefault(loop, [])
            heapq.heappush(sleepers, (self._now + seconds, next(self._order), future))
            if len(sleepers) == 1:
                loop.call_soon(self._wake_sleepers, loop, _SETTLE_TURNS)
        await future

    def block(self, seconds: float) -> None:
        """A blocking wait returns at once, time having moved by `seconds` (at least a tick)."""
        self.advance(max(seconds, TICK))

    def call_later(
        self,
        loop: asyncio.AbstractEventLoop,
        delay: float,
        callback: Callable[..., Any],
        *args: Any,
    ) -> _Timer:
        with self._lock:
            timer = _Timer(self._now + max(0.0, delay), next(self._order), loop, callback, args)
            heapq.heappush(self._timers, timer)
        return timer

    # -- moving time ----------------------------------------------------------------------

    def advance(self, seconds: float) -> float:
        """Move time forward by `seconds`; returns the new time."""
        return self.advance_to(self._now + max(0.0, seconds))

    def advance_to(self, when: float | str | datetime) -> float:
        """Move time forward to `when` (never backwards); due timers fire. Returns the new time."""
        target = to_epoch(when)
        with self._lock:
            self._now = max(self._now, target)
            due = []
            while self._timers and self._timers[0].when <= self._now:
                due.append(heapq.heappop(self._timers))
        for timer in due:
            if not timer.cancelled and not timer.loop.is_closed():
                timer.loop.call_soon_threadsafe(timer.callback, *timer.args)
        return self._now

    def _wake_sleepers(self, loop: asyncio.AbstractEventLoop, turns: int) -> None:
        if turns > 0:
            loop.call_soon(self._wake_sleepers, loop, turns - 1)
            return
        from ductape_cli.engine.steps import blocking_calls_in_flight

        if blocking_calls_in_flight(
            loop
        ):  # a step function still runs on a thread: time waits for it
            loop.call_later(0.001, self._wake_sleepers, loop, _SETTLE_TURNS)
            return
        with self._lock:
            sleepers = self._sleepers.get(loop)
            if not sleepers:
                return
            self.advance_to(sleepers[0][0])
            woken = []
            while sleepers and sleepers[0][0] <= self._now:
                woken.append(heapq.heappop(sleepers)[2])
            if sleepers:
                loop.call_soon(self._wake_sleepers, loop, _SETTLE_TURNS)
            else:
                del self._sleepers[loop]
        for future in woken:
            if not future.done():
                future.set_result(None)

    def __repr__(self) -> str:
        return f"VirtualClock({datetime.fromtimestamp(self._now, tz=UTC).isoformat(timespec='milliseconds')})"
