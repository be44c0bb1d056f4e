"""Time is passed in: the engine reads and waits on a clock, so tests can use a virtual one."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import asyncio


class Clock(Protocol):
    """What the engine asks of time: the system clock, or the testing kit's fake one."""

    def now(self) -> float: ...


class SystemClock:
    """Wall-clock time; `sleep` really waits."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            import asyncio  # only an executing run sleeps: reading commands never import asyncio

            await asyncio.sleep(seconds)

    def block(self, seconds: float) -> None:
        """Blocking wait, for loops outside asyncio (the worker's poll, `run --wait`)."""
        if seconds > 0:
            time.sleep(seconds)

    def call_later(
        self,
        loop: asyncio.AbstractEventLoop,
        delay: float,
        callback: Callable[..., Any],
        *args: Any,
    ) -> Any:
        """Call `callback` on `loop` after `delay` seconds of this clock's time; returns a handle with `cancel()`."""
        return loop.call_later(delay, callback, *args)


class SteadyTime:
    """Wall-clock time that a forward step of the system clock cannot move ahead.

    Anchored at the wall time when created and advanced by the monotonic
    clock; a backward step is followed (it is never later than the wall
    clock). A worker compares due times and leases against this, so a clock
    stepped forward neither fires schedules early nor makes live leases look
    expired. Restart the worker after deliberately setting the clock forward.
    """

    JUMP = 1.0  # seconds the wall clock may lead before it counts as a step

    def __init__(
        self, wall: Callable[[], float] = time.time, mono: Callable[[], float] = time.monotonic
    ) -> None:
        self._wall, self._mono = wall, mono
        self._anchor_wall, self._anchor_mono = wall(), mono()
        self.ahead = 0.0  # how far the wall clock ran ahead at the last reading

    def now(self) -> float:
        wall, steady = self._wall(), self._anchor_wall + (self._mono() - self._anchor_mono)
        if wall <= steady:
            self._anchor_wall, self._anchor_mono = wall, self._mono()  # follow a backward step
            self.ahead = 0.0
            return wall
        self.ahead = wall - steady
        return steady if self.ahead > self.JUMP else wall
