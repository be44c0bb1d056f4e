"""`type = "rabbitmq"`: AMQP 0-9-1 (aio-pika). A topic is the durable queue of that name.

Produce publishes a persistent message through the default exchange (routing
key = topic) with publisher confirms, `message_id` set to the ductape message
id and the same id in the `Ductape-Message-Id` header. A trigger consumes with
manual acknowledgements; a message delivered to a consumer that dies
unacknowledged goes back to the queue. RabbitMQ gives a message no identity of
its own, so a trigger knows a redelivery by its message id (messages from
other producers without one start a run per delivery: at-least-once).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ductape_cli.components.brokers.base import (
    MESSAGE_ID_HEADER,
    Delivery,
    decode_body,
    encode_body,
    peek_row,
)

if TYPE_CHECKING:
    from ductape_cli.components.config import ResolvedBroker
    from ductape_cli.store import Store

PREFETCH = 256


class RabbitBroker:
    type = "rabbitmq"

    def __init__(self, broker: ResolvedBroker, store: Store | None = None) -> None:
        self.name = broker.name
        self.url = broker.url or ""
        self._connection: Any = None
        self._channel: Any = None
        self._declared: set[str] = set()

    async def connection(self) -> Any:
        if self._connection is None or self._connection.is_closed:
            import aio_pika

            self._connection = await aio_pika.connect(self.url)
            self._channel, self._declared = None, set()
        return self._connection

    async def channel(self) -> Any:
        connection = await self.connection()
        if self._channel is None or self._channel.is_closed:
            self._channel = await connection.channel(publisher_confirms=True)
            self._declared = set()
        return self._channel

    async def publish(
        self, topic: str, message: Any, message_id: str, run_id: str | None = None
    ) -> dict[str, Any]:
        import aio_pika

        channel = await self.channel()
        if topic not in self._declared:
            await channel.declare_queue(topic, durable=True)
            self._declared.add(topic)
        headers: dict[str, Any] = {MESSAGE_ID_HEADER: message_id}
        if run_id:
            headers["Ductape-Run-Id"] = run_id
        amqp_message = aio_pika.Message(
            encode_body(message),
            message_id=message_id,
            headers=headers,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await channel.default_exchange.publish(
            amqp_message, routing_key=topic
        )  # waits for the confirm
        return {}

    async def subscribe(self, topic: str, consumer: str) -> RabbitSubscription:
        connection = await self.connection()
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        queue = await channel.declare_queue(topic, durable=True)
        subscription = RabbitSubscription(topic, channel)
        await queue.consume(
            subscription.received, no_ack=False, consumer_tag=f"{consumer}-{id(subscription):x}"
        )
        return subscription

    async def peek(
        self, topic: str, start: str | None, limit: int, wait: float
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The messages waiting in the queue, fetched unacknowledged and put back (order kept)."""
        skip = int(start or 0)
        deadline = time.monotonic() + wait
        while True:
            connection = await self.connection()
            channel = await connection.channel()
            rows = []
            try:
                queue = await channel.declare_queue(topic, durable=True)
                for index in range(skip + limit):
                    incoming = await queue.get(no_ack=False, fail=False)
                    if incoming is None:
                        break
                    if index >= skip:
                        message_id, body = _decode(incoming)
                        rows.append(peek_row(index, message_id, body))
            finally:
                await channel.close()  # every unacknowledged message goes back to the queue
            if rows or time.monotonic() >= deadline:
                return rows, str(skip + len(rows))
            await asyncio.sleep(0.2)

    async def describe(self, topics: Sequence[str]) -> list[dict[str, Any]]:
        connection = await self.connection()
        rows = []
        for topic in topics:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(topic, durable=True, passive=True)
                result = queue.declaration_result
                rows.append(
                    {
                        "topic": topic,
                        "messages": result.message_count,
                        "detail": f"{result.consumer_count} consumers",
                    }
                )
            except Exception:  # noqa: BLE001 - a passive declare of a missing queue closes the channel with 404
                rows.append({"topic": topic, "messages": 0, "detail": "queue not declared yet"})
            finally:
                if not channel.is_closed:
                    await channel.close()
        return rows

    async def close(self) -> None:
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()
        self._connection = self._channel = None


def _decode(incoming: Any) -> tuple[str | None, Any]:
    headers = incoming.headers or {}
    message_id = incoming.message_id or headers.get(MESSAGE_ID_HEADER)
    if isinstance(message_id, bytes):
        message_id = message_id.decode("utf-8", "replace")
    return (str(message_id) if message_id else None), decode_body(incoming.body)


class RabbitSubscription:
    def __init__(self, topic: str, channel: Any) -> None:
        self.topic, self.channel = topic, channel
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    async def received(self, incoming: Any) -> None:
        await self.queue.put(incoming)

    async def fetch(self, limit: int, timeout: float) -> list[Delivery]:
        if self.channel.is_closed and self.queue.empty():
            raise ConnectionError(
                f"RabbitMQ channel for {self.topic!r} closed"
            )  # the trigger reconnects
        try:
            first = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return []
        batch = [first]
        while len(batch) < limit and not self.queue.empty():
            batch.append(self.queue.get_nowait())
        deliveries = []
        for incoming in batch:
            message_id, body = _decode(incoming)
            meta = {"message_id": message_id, "redelivered": bool(incoming.redelivered)}
            deliveries.append(
                Delivery(
                    self.topic,
                    body,
                    message_id,
                    f"message:{message_id}" if message_id else None,
                    meta,
                    incoming,
                )
            )
        return deliveries

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            # Deliveries arrive in order on one channel: acknowledging the last covers the batch.
            await max(deliveries, key=lambda d: d.handle.delivery_tag).handle.ack(multiple=True)

    async def close(self) -> None:
        if not self.channel.is_closed:
            await self.channel.close()
