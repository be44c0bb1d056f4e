"""`type = "nats"`: NATS JetStream (nats-py). A topic is a subject of the broker's stream.

The stream (`stream = "NAME"`, default ``DUCTAPE_<BROKER>``) is created on
first use with the declared topics as its subjects. Produce publishes with
``Nats-Msg-Id`` set to the ductape message id, so JetStream itself drops a
duplicate published within the stream's duplicate window (2 minutes by
default); the id is also in the `Ductape-Message-Id` header. A trigger is a
durable pull consumer; an unacknowledged message comes back after `ack_wait`.
The stream sequence (with the stream's creation time, since a stream
created again restarts at 1) is the message's identity.
"""

from __future__ import annotations

import asyncio
import re
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

DEFAULT_ACK_WAIT = 30.0


def stream_name(broker: ResolvedBroker) -> str:
    return broker.model.stream or "DUCTAPE_" + re.sub(r"[^A-Za-z0-9_-]", "_", broker.name).upper()


class NatsBroker:
    type = "nats"

    def __init__(self, broker: ResolvedBroker, store: Store | None = None) -> None:
        self.name = broker.name
        self.url = broker.url or ""
        self.model = broker.model
        self.stream = stream_name(broker)
        self._nc: Any = None
        self._js: Any = None
        self._ready = False
        self.epoch = ""

    async def js(self) -> Any:
        if self._nc is None or self._nc.is_closed:
            import nats

            self._nc = await nats.connect(self.url, allow_reconnect=True, max_reconnect_attempts=5)
            self._js, self._ready = self._nc.jetstream(), False
        if not self._ready:
            await self._ensure_stream()
            self._ready = True
        return self._js

    async def _ensure_stream(self) -> None:
        from nats.js.errors import NotFoundError

        topics = list(self.model.topics)
        try:
            info = await self._js.stream_info(self.stream)
        except NotFoundError:
            info = await self._js.add_stream(name=self.stream, subjects=topics)
        # Sequences restart at 1 in a stream deleted and created again: its creation time tells them apart.
        self.epoch = info.created.strftime("%Y%m%dT%H%M%S.%f") if info.created else ""
        subjects = list(info.config.subjects or [])
        missing = [t for t in topics if t not in subjects]
        if missing:
            info.config.subjects = subjects + missing
            await self._js.update_stream(info.config)

    async def publish(
        self, topic: str, message: Any, message_id: str, run_id: str | None = None
    ) -> dict[str, Any]:
        js = await self.js()
        headers = {"Nats-Msg-Id": message_id, MESSAGE_ID_HEADER: message_id}
        if run_id:
            headers["Ductape-Run-Id"] = run_id
        ack = await js.publish(topic, encode_body(message), stream=self.stream, headers=headers)
        receipt: dict[str, Any] = {"sequence": ack.seq}
        if ack.duplicate:
            receipt["duplicate"] = True
        return receipt

    async def subscribe(self, topic: str, consumer: str) -> NatsSubscription:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        js = await self.js()
        durable = re.sub(r"[^A-Za-z0-9_-]", "_", consumer)
        ack_wait = (self.model.ack_wait / 1000) if self.model.ack_wait else DEFAULT_ACK_WAIT
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=ack_wait,
            filter_subject=topic,
            max_ack_pending=20_000,
        )
        psub = await js.pull_subscribe(topic, durable=durable, stream=self.stream, config=config)
        return NatsSubscription(self, topic, psub)

    async def peek(
        self, topic: str, start: str | None, limit: int, wait: float
    ) -> tuple[list[dict[str, Any]], str | None]:
        from nats.js.errors import NotFoundError

        js = await self.js()
        seq = int(start or 1)
        deadline = time.monotonic() + wait
        rows: list[dict[str, Any]] = []
        while True:
            while len(rows) < limit:
                try:
                    raw = await js.get_msg(self.stream, seq=seq, subject=topic, next=True)
                except NotFoundError:
                    break
                headers = raw.headers or {}
                rows.append(
                    peek_row(
                        raw.seq,
                        headers.get(MESSAGE_ID_HEADER),
                        decode_body(raw.data or b""),
                        run_id=headers.get("Ductape-Run-Id"),
                    )
                )
                seq = raw.seq + 1
            if rows or time.monotonic() >= deadline:
                return rows, str(seq)
            await asyncio.sleep(0.2)

    async def describe(self, topics: Sequence[str]) -> list[dict[str, Any]]:
        js = await self.js()
        info = await js.stream_info(self.stream, subjects_filter=">")
        counts = info.state.subjects or {}
        return [
            {"topic": t, "messages": int(counts.get(t, 0)), "detail": f"stream {self.stream}"}
            for t in topics
        ]

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.drain()
        self._nc = self._js = None


class NatsSubscription:
    def __init__(self, broker: NatsBroker, topic: str, psub: Any) -> None:
        self.broker, self.topic, self.psub = broker, topic, psub

    async def fetch(self, limit: int, timeout: float) -> list[Delivery]:
        import nats.errors

        try:
            messages = await self.psub.fetch(limit, timeout=max(timeout, 0.05))
        except nats.errors.TimeoutError:
            return []
        deliveries = []
        for msg in messages:
            headers = msg.headers or {}
            sequence = msg.metadata.sequence.stream
            meta = {"sequence": sequence, "delivered": msg.metadata.num_delivered}
            identity = f"seq:{self.broker.epoch}:{sequence}"
            deliveries.append(
                Delivery(
                    self.topic,
                    decode_body(msg.data),
                    headers.get(MESSAGE_ID_HEADER),
                    identity,
                    meta,
                    msg,
                )
            )
        return deliveries

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            await delivery.handle.ack()
        if deliveries:
            await self.broker._nc.flush()  # the acks have reached the server when this returns

    async def close(self) -> None:
        await self.psub.unsubscribe()
