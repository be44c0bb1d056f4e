"""`type = "mqtt"`: MQTT 5 (paho-mqtt). A topic is the MQTT topic of that name.

MQTT keeps no log and gives a message no id of its own, so its guarantee is
weaker than the others' and exactly this: produce publishes at QoS 1 (or 2)
with the ductape message id as the `Ductape-Message-Id` user property and
waits for the broker's acknowledgement. A trigger holds a persistent session
(fixed client id, clean start off, `session_expiry`) subscribed at QoS 1 and
sends PUBACK only after the run exists, so the broker redelivers whatever a
crashed worker had not acknowledged, and queues what arrives while it is
down. Redeliveries are told apart by the message id (the user property, or
a top-level ``"id"`` in a JSON payload); a message with neither starts a run
per delivery. Messages published before the trigger's first subscription
are not kept by MQTT.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ductape_cli.components.brokers.base import (
    MESSAGE_ID_HEADER,
    Delivery,
    decode_body,
    encode_body,
    peek_row,
)
from ductape_cli.errors import ConfigError

if TYPE_CHECKING:
    from ductape_cli.components.config import ResolvedBroker
    from ductape_cli.store import Store

CONNECT_TIMEOUT = 10.0
PUBLISH_TIMEOUT = 30.0


class MqttBroker:
    type = "mqtt"

    def __init__(self, broker: ResolvedBroker, store: Store | None = None) -> None:
        self.name = broker.name
        self.model = broker.model
        parts = urlsplit(broker.url or "")
        self.tls = parts.scheme == "mqtts"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (8883 if self.tls else 1883)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self._publisher: Any = None

    def client(
        self,
        client_id: str = "",
        *,
        persistent: bool = False,
        on_message: Any = None,
        topic: str | None = None,
    ) -> Any:
        """A connected paho client running its network thread (blocking: call from a thread)."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=persistent,
        )
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set()
        connected = threading.Event()
        failure: list[str] = []

        def on_connect(
            client: Any, userdata: Any, flags: Any, reason: Any, properties: Any
        ) -> None:
            if reason.is_failure:
                failure.append(str(reason))
            elif topic is not None:
                client.subscribe(topic, qos=self.model.qos)  # again after every reconnect
            connected.set()

        client.on_connect = on_connect
        if on_message is not None:
            client.on_message = on_message
        properties = Properties(PacketTypes.CONNECT)
        if persistent:
            properties.SessionExpiryInterval = max(1, self.model.session_expiry // 1000)
        client.connect(
            self.host, self.port, keepalive=30, clean_start=not persistent, properties=properties
        )
        client.loop_start()
        if not connected.wait(CONNECT_TIMEOUT) or failure:
            client.loop_stop()
            reason = failure[0] if failure else "no answer"
            raise ConfigError(
                f"[brokers.{self.name}] MQTT broker {self.host}:{self.port} refused the connection: {reason}"
            )
        return client

    async def publish(
        self, topic: str, message: Any, message_id: str, run_id: str | None = None
    ) -> dict[str, Any]:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        loop = asyncio.get_running_loop()
        if self._publisher is None:
            self._publisher = await loop.run_in_executor(None, self.client)
        properties = Properties(PacketTypes.PUBLISH)
        properties.UserProperty = [(MESSAGE_ID_HEADER, message_id)] + (
            [("Ductape-Run-Id", run_id)] if run_id else []
        )
        properties.ContentType = "application/json"
        info = self._publisher.publish(
            topic, encode_body(message), qos=self.model.qos, properties=properties
        )
        await loop.run_in_executor(
            None, info.wait_for_publish, PUBLISH_TIMEOUT
        )  # until the broker's PUBACK
        if not info.is_published():
            raise ConnectionError(
                f"MQTT broker {self.host}:{self.port} did not acknowledge the publish to {topic!r}"
            )
        return {}

    async def subscribe(self, topic: str, consumer: str) -> MqttSubscription:
        loop = asyncio.get_running_loop()
        subscription = MqttSubscription(topic, loop)
        client_id = re.sub(r"[^A-Za-z0-9_-]", "_", consumer)
        subscription.client = await loop.run_in_executor(
            None,
            lambda: self.client(
                client_id, persistent=True, on_message=subscription.received, topic=topic
            ),
        )
        return subscription

    async def peek(
        self, topic: str, start: str | None, limit: int, wait: float
    ) -> tuple[list[dict[str, Any]], str | None]:
        """What arrives on the topic (and its retained message) within `wait` seconds: MQTT keeps no log."""
        loop = asyncio.get_running_loop()
        tap = MqttSubscription(topic, loop)
        client = await loop.run_in_executor(
            None, lambda: self.client(on_message=tap.received, topic=topic)
        )
        try:
            deliveries = await tap.fetch(limit, max(wait, 1.0))
            deadline = time.monotonic() + min(wait, 1.0)
            while len(deliveries) < limit and time.monotonic() < deadline:
                deliveries += await tap.fetch(limit - len(deliveries), deadline - time.monotonic())
        finally:
            client.disconnect()
            client.loop_stop()
        first = int(start or 0)
        rows = [
            peek_row(first + i, d.message_id, d.body, retained=d.meta["retained"])
            for i, d in enumerate(deliveries)
        ]
        return rows, str(first + len(rows))

    async def describe(self, topics: Sequence[str]) -> list[dict[str, Any]]:
        detail = f"mqtt {self.host}:{self.port} (MQTT keeps no log: tail shows live messages)"
        return [{"topic": t, "messages": None, "detail": detail} for t in topics]

    async def close(self) -> None:
        if self._publisher is not None:
            self._publisher.disconnect()
            self._publisher.loop_stop()
            self._publisher = None


def message_id_of(msg: Any, body: Any) -> str | None:
    """The `Ductape-Message-Id` user property, else a top-level "id" of a JSON object payload."""
    for key, value in getattr(msg.properties, "UserProperty", None) or []:
        if key == MESSAGE_ID_HEADER:
            return str(value)
    if (
        isinstance(body, dict)
        and isinstance(body.get("id"), (str, int))
        and not isinstance(body.get("id"), bool)
    ):
        return str(body["id"])
    return None


class MqttSubscription:
    def __init__(self, topic: str, loop: asyncio.AbstractEventLoop) -> None:
        self.topic, self.loop = topic, loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.client: Any = None

    def received(self, client: Any, userdata: Any, msg: Any) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, msg)  # on paho's network thread

    async def fetch(self, limit: int, timeout: float) -> list[Delivery]:
        try:
            first = await asyncio.wait_for(self.queue.get(), max(timeout, 0.0))
        except TimeoutError:
            return []
        batch = [first]
        while len(batch) < limit and not self.queue.empty():
            batch.append(self.queue.get_nowait())
        deliveries = []
        for msg in batch:
            body = decode_body(msg.payload)
            message_id = message_id_of(msg, body)
            meta = {"retained": bool(msg.retain), "duplicate": bool(msg.dup)}
            deliveries.append(
                Delivery(
                    msg.topic,
                    body,
                    message_id,
                    f"message:{message_id}" if message_id else None,
                    meta,
                    msg,
                )
            )
        return deliveries

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            if delivery.handle.qos > 0:
                self.client.ack(delivery.handle.mid, delivery.handle.qos)

    async def close(self) -> None:
        if self.client is not None:
            # A plain disconnect keeps the session (and its queued messages) on the broker.
            self.client.disconnect()
            self.client.loop_stop()
