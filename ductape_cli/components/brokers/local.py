"""`type = "local"`: topic logs inside ductape's own store (the default; nothing to run).

A message id is unique per topic, so a produce step re-executed after a crash
finds its message already there instead of appending a duplicate. Consumers
keep their next offset in the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ductape_cli.components.brokers.base import Delivery, peek_row
from ductape_cli.errors import ConfigError

if TYPE_CHECKING:
    from ductape_cli.components.config import ResolvedBroker
    from ductape_cli.store import Store

POLL_SECONDS = 0.1


class LocalBroker:
    type = "local"

    def __init__(self, broker: ResolvedBroker, store: Store | None) -> None:
        if store is None:
            raise ConfigError(
                f"[brokers.{broker.name}] is a local broker and needs the project's store"
            )
        self.name = broker.name
        self.store = store

    async def publish(
        self, topic: str, message: Any, message_id: str, run_id: str | None = None
    ) -> dict[str, Any]:
        offset = self.store.append_message(
            self.name, topic, message, run_id, time.time(), message_id=message_id
        )
        return {"offset": offset}

    async def subscribe(self, topic: str, consumer: str) -> LocalSubscription:
        return LocalSubscription(self, topic, consumer)

    async def peek(
        self, topic: str, start: str | None, limit: int, wait: float
    ) -> tuple[list[dict[str, Any]], str | None]:
        offset = int(start or 0)
        deadline = time.monotonic() + wait
        while True:
            rows = self.store.read_messages(self.name, topic, offset, limit)
            if rows or time.monotonic() >= deadline:
                break
            await asyncio.sleep(POLL_SECONDS)
        shown = [
            peek_row(
                r["offset"],
                r.get("message_id"),
                r["message"],
                run_id=r["run_id"],
                created_at=r["created_at"],
            )
            for r in rows
        ]
        return shown, str(rows[-1]["offset"] + 1 if rows else offset)

    async def describe(self, topics: Sequence[str]) -> list[dict[str, Any]]:
        counts = {t["topic"]: t for t in self.store.list_topics() if t["broker"] == self.name}
        names = list(topics) + sorted(set(counts) - set(topics))
        return [
            {
                "topic": t,
                "messages": counts[t]["messages"] if t in counts else 0,
                "last_at": counts[t]["last_at"] if t in counts else None,
            }
            for t in names
        ]

    async def close(self) -> None:
        return None


class LocalSubscription:
    def __init__(self, broker: LocalBroker, topic: str, consumer: str) -> None:
        self.broker, self.topic, self.consumer = broker, topic, consumer

    async def fetch(self, limit: int, timeout: float) -> list[Delivery]:
        store = self.broker.store
        offset = store.consumer_offset(self.consumer, self.broker.name, self.topic)
        deadline = time.monotonic() + timeout
        while True:
            rows = store.read_messages(self.broker.name, self.topic, offset, limit)
            if rows or time.monotonic() >= deadline:
                break
            await asyncio.sleep(POLL_SECONDS)
        return [
            Delivery(
                self.topic,
                r["message"],
                r.get("message_id"),
                f"offset:{r['offset']}",
                {"offset": r["offset"]},
                r["offset"],
            )
            for r in rows
        ]

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            next_offset = max(int(d.handle) for d in deliveries) + 1
            self.broker.store.set_consumer_offset(
                self.consumer, self.broker.name, self.topic, next_offset
            )

    async def close(self) -> None:
        return None
