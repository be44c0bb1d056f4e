"""Subscriptions: one thread tails the store's feed and hands each event to its subscribers.

The feed is written by every process on the store, so a run started by
another CLI or executed by another worker streams like one of ours. A
subscriber first reads its backlog (`since` a cursor) from the store, then
takes live events newer than that backlog: nothing is missed or sent twice.
Each subscriber's queue is bounded; one that falls too far behind is closed
and told the cursor to resume from.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ductape_cli.errors import DuctapeError

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine

log = logging.getLogger("ductape.server")

BACKLOG_PAGE = 500


class TooManySubscriptions(DuctapeError):
    code = "TOO_MANY_SUBSCRIPTIONS"


class Lagging(Exception):
    """A subscriber's queue overflowed; it should reconnect with `since`."""

    def __init__(self, cursor: int) -> None:
        super().__init__(f"subscriber fell behind; reconnect with since={cursor}")
        self.cursor = cursor


@dataclass(eq=False)
class Subscription:
    run_id: str | None
    tag: str | None
    loop: asyncio.AbstractEventLoop
    limit: int
    queue: asyncio.Queue[list[dict[str, Any]]] = field(default_factory=asyncio.Queue)
    pending: int = 0
    overflowed: bool = False

    def offer(self, events: list[dict[str, Any]]) -> None:
        """Called on the event loop with this subscriber's share of one feed read."""
        if self.overflowed:
            return
        self.pending += len(events)
        if self.pending > self.limit:
            self.overflowed = True
        self.queue.put_nowait(events)


class Hub:
    """The feed tailer and the table of live subscriptions."""

    def __init__(
        self, engine: Engine, *, max_subscriptions: int, queue_limit: int, poll_interval: float
    ) -> None:
        self.engine = engine
        self.max_subscriptions = max_subscriptions
        self.queue_limit = queue_limit
        self.poll_interval = poll_interval
        self.cursor = 0
        self.by_run: dict[str, set[Subscription]] = {}
        self.by_tag: dict[str, set[Subscription]] = {}
        self.count = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the tailer thread --------------------------------------------------------

    def start(self) -> None:
        self.engine.enable_feed()
        self.cursor = self.engine.feed_position()
        self._thread = threading.Thread(target=self._tail, name="ductape-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.engine.close()

    def _tail(self) -> None:
        while not self._stop.is_set():
            try:
                more = self.poll()
            except Exception:  # noqa: BLE001 - a store hiccup must not end the stream; retry next tick
                log.exception("reading the store's feed failed; retrying")
                more = False
            if not more:
                self._stop.wait(self.poll_interval)

    def poll(self) -> bool:
        """Read one page of the feed and dispatch it; True when it moved on (read again at once)."""
        if not self.count:
            # Nobody listens: skip what was written (new subscribers read their backlog themselves).
            with self._lock:
                self.cursor = max(self.cursor, self.engine.feed_position())
            return False
        before = self.cursor
        events, cursor = self.engine.feed(before, limit=BACKLOG_PAGE)
        with self._lock:
            self.cursor = cursor
            shares: dict[Subscription, list[dict[str, Any]]] = {}
            for event in events:
                for sub in (
                    *self.by_run.get(event["executionId"], ()),
                    *self.by_tag.get(event["workflow"], ()),
                ):
                    shares.setdefault(sub, []).append(event)
        for sub, share in shares.items():
            try:
                sub.loop.call_soon_threadsafe(sub.offer, share)
            except RuntimeError:  # its event loop closed: the server is stopping
                pass
        return cursor != before

    # -- subscribers ---------------------------------------------------------------

    def subscribe(
        self, *, run_id: str | None = None, tag: str | None = None
    ) -> tuple[Subscription, int]:
        """Register a subscriber; returns it and the cursor from which live events reach it."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.count >= self.max_subscriptions:
                raise TooManySubscriptions(
                    f"{self.count} subscriptions are open; the limit is {self.max_subscriptions}"
                )
            sub = Subscription(run_id, tag, loop, self.queue_limit)
            table, key = (self.by_run, run_id) if run_id is not None else (self.by_tag, tag)
            table.setdefault(key, set()).add(sub)  # type: ignore[arg-type]
            self.count += 1
            return sub, self.cursor

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            table, key = (
                (self.by_run, sub.run_id) if sub.run_id is not None else (self.by_tag, sub.tag)
            )
            subs = table.get(key)  # type: ignore[arg-type]
            if subs is not None and sub in subs:
                subs.discard(sub)
                self.count -= 1
                if not subs:
                    del table[key]  # type: ignore[arg-type]

    async def events(
        self, sub: Subscription, since: int | None, live_from: int
    ) -> AsyncIterator[dict[str, Any]]:
        """The subscriber's events: the backlog after `since` (if given), then live ones, in order."""
        sent = live_from if since is None else since
        if since is not None:
            while True:
                page, cursor = await asyncio.to_thread(
                    self.engine.feed, sent, run_id=sub.run_id, tag=sub.tag, limit=BACKLOG_PAGE
                )
                for event in page:
                    yield event
                if cursor == sent:
                    break
                sent = cursor
        while True:
            batch = await sub.queue.get()
            sub.pending -= len(batch)
            if sub.overflowed:
                raise Lagging(sent)
            for event in batch:
                if event["id"] > sent:
                    yield event
            sent = max(sent, batch[-1]["id"])
