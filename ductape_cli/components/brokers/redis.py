"""`type = "redis"`: Redis streams (redis-py). A topic is the stream of that name.

Produce is ``XADD topic * id <message id> body <json>``. A trigger reads with a
consumer group (created at the start of the stream) and acknowledges with
``XACK``; entries a crashed consumer read but never acknowledged are claimed
back with ``XAUTOCLAIM`` once idle for `ack_wait`. The entry id is the
message's identity.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ductape_cli.components.brokers.base import Delivery, decode_body, encode_body, peek_row

if TYPE_CHECKING:
    from ductape_cli.components.config import ResolvedBroker
    from ductape_cli.store import Store

DEFAULT_ACK_WAIT = 30.0
POLL_SECONDS = 0.2


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class RedisBroker:
    type = "redis"

    def __init__(self, broker: ResolvedBroker, store: Store | None = None) -> None:
        self.name = broker.name
        self.url = broker.url or ""
        self.model = broker.model
        self._redis: Any = None

    @property
    def redis(self) -> Any:
        if self._redis is None:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(self.url)
        return self._redis

    async def publish(
        self, topic: str, message: Any, message_id: str, run_id: str | None = None
    ) -> dict[str, Any]:
        fields = {"id": message_id, "body": encode_body(message)}
        if run_id:
            fields["run_id"] = run_id
        entry = await self.redis.xadd(topic, fields, maxlen=self.model.maxlen, approximate=True)
        return {"stream_id": _text(entry)}

    async def subscribe(self, topic: str, consumer: str) -> RedisSubscription:
        from redis.exceptions import ResponseError

        try:
            await self.redis.xgroup_create(topic, consumer, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        ack_wait = (self.model.ack_wait / 1000) if self.model.ack_wait else DEFAULT_ACK_WAIT
        return RedisSubscription(self, topic, consumer, ack_wait)

    async def peek(
        self, topic: str, start: str | None, limit: int, wait: float
    ) -> tuple[list[dict[str, Any]], str | None]:
        deadline = time.monotonic() + wait
        low = start or "-"  # a position this returned is "(ID": after that entry
        while True:
            entries = await self.redis.xrange(topic, min=low, max="+", count=limit)
            if entries or time.monotonic() >= deadline:
                break
            await asyncio.sleep(POLL_SECONDS)
        rows = []
        for entry_id, fields in entries:
            message_id, body = _decode(fields)
            rows.append(
                peek_row(
                    _text(entry_id),
                    message_id,
                    body,
                    run_id=_text(fields[b"run_id"]) if b"run_id" in fields else None,
                )
            )
        return rows, f"({rows[-1]['position']}" if rows else start

    async def describe(self, topics: Sequence[str]) -> list[dict[str, Any]]:
        from redis.exceptions import ResponseError

        rows = []
        for topic in topics:
            length = await self.redis.xlen(topic)
            try:
                groups = await self.redis.xinfo_groups(topic)
            except ResponseError:
                groups = []
            detail = ", ".join(f"group {_text(g['name'])}: {g['pending']} pending" for g in groups)
            rows.append({"topic": topic, "messages": int(length), "detail": detail})
        return rows

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


def _decode(fields: dict[bytes, bytes]) -> tuple[str | None, Any]:
    """Our entries are {id, body}; anyone else's stream entry becomes a dict of its fields."""
    message_id = _text(fields[b"id"]) if b"id" in fields else None
    if b"body" in fields:
        return message_id, decode_body(fields[b"body"])
    return message_id, {_text(k): _text(v) for k, v in fields.items()}


class RedisSubscription:
    def __init__(self, broker: RedisBroker, topic: str, group: str, ack_wait: float) -> None:
        self.broker, self.topic, self.group, self.ack_wait = broker, topic, group, ack_wait
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._last_claim = 0.0

    def _delivery(self, entry_id: Any, fields: dict[bytes, bytes]) -> Delivery:
        message_id, body = _decode(fields)
        position = _text(entry_id)
        return Delivery(
            self.topic, body, message_id, f"stream:{position}", {"stream_id": position}, position
        )

    async def fetch(self, limit: int, timeout: float) -> list[Delivery]:
        redis = self.broker.redis
        now = time.monotonic()
        if now - self._last_claim >= min(self.ack_wait / 2, 5.0):
            self._last_claim = now
            # Entries another (crashed) consumer read but never acknowledged.
            claimed = await redis.xautoclaim(
                self.topic,
                self.group,
                self.consumer,
                min_idle_time=int(self.ack_wait * 1000),
                start_id="0-0",
                count=limit,
            )
            entries = [e for e in claimed[1] if e and e[1] is not None]
            if entries:
                return [self._delivery(entry_id, fields) for entry_id, fields in entries]
        block = max(1, int(timeout * 1000))
        response = await redis.xreadgroup(
            self.group, self.consumer, {self.topic: ">"}, count=limit, block=block
        )
        deliveries: list[Delivery] = []
        for _stream, entries in response or []:
            deliveries.extend(self._delivery(entry_id, fields) for entry_id, fields in entries)
        return deliveries

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            await self.broker.redis.xack(self.topic, self.group, *[d.handle for d in deliveries])

    async def close(self) -> None:
        return None
