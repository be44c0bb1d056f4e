"""Time is passed in: the engine reads and waits on a clock, so tests can use a virtual one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


class SystemClock:
    """Wall-clock time; `sleep` really waits."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    def block(self, seconds: float) -> None:
        """Blocking wait, for loops outside asyncio (the worker's poll, `run --wait`)."""
        if seconds > 0:
            time.sleep(seconds)

    def call_later(self, loop: asyncio.AbstractEventLoop, delay: float, callback: Callable[..., Any], *args: Any) -> Any:
        """Call `callback` on `loop` after `delay` seconds of this clock's time; returns a handle with `cancel()`."""
        return loop.call_later(delay, callback, *args)
