"""Real brokers for tests: a fresh topic (stream, queue, subject) per test, removed afterwards.

`broker_case(kind)` checks the service is there (tests/services.py `need`),
picks unique names, and gives the `[brokers.events]` table for ductape.toml.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.services import need, reachable

KINDS = ("redis", "rabbitmq", "nats", "mqtt")
PORTS = {"redis": 6379, "rabbitmq": 5672, "nats": 4222, "mqtt": 1883}
NAMES = {"redis": "Redis", "rabbitmq": "RabbitMQ", "nats": "NATS", "mqtt": "Mosquitto"}
URLS = {
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
    "nats": "nats://127.0.0.1:4222",
    "mqtt": "mqtt://127.0.0.1:1883",
}


@dataclass
class BrokerCase:
    kind: str
    token: str
    extra: str = ""
    consumers: list[str] = field(default_factory=list)

    @property
    def topic(self) -> str:
        return f"ductape-test/{self.token}" if self.kind == "mqtt" else f"ductape-test-{self.token}"

    @property
    def stream(self) -> str:
        return f"DUCTAPE_TEST_{self.token.upper()}"

    @property
    def group(self) -> str:
        return f"dt-{self.token}"

    def toml(self, *, outbox: bool = False, ack_wait: str = "1s") -> str:
        lines = [
            "[brokers.events]",
            f'type = "{self.kind}"',
            f'url = "{URLS[self.kind]}"',
            f'topics = ["{self.topic}"]',
        ]
        lines.append(f'group = "{self.group}"')
        if self.kind == "nats":
            lines.append(f'stream = "{self.stream}"')
        if self.kind in ("redis", "nats"):
            lines.append(f'ack_wait = "{ack_wait}"')
        if outbox:
            lines.append("outbox = true")
        return "\n".join(lines) + "\n" + self.extra

    def resolved(self) -> Any:
        from ductape_cli.components.config import Broker, ResolvedBroker

        options: dict[str, Any] = {
            "type": self.kind,
            "url": URLS[self.kind],
            "topics": [self.topic],
            "group": self.group,
        }
        if self.kind == "nats":
            options["stream"] = self.stream
        return ResolvedBroker("events", URLS[self.kind], Broker.model_validate(options))

    def client(self) -> Any:
        from ductape_cli.components.brokers import open_client

        return open_client(self.resolved())

    def publish(self, messages: list[tuple[str, Any]]) -> None:
        """Publish (message id, body) pairs straight to the broker, as another system would."""

        async def go() -> None:
            client = self.client()
            try:
                for message_id, body in messages:
                    await client.publish(self.topic, body, message_id)
            finally:
                await client.close()

        asyncio.run(go())

    def read_all(self) -> list[dict[str, Any]]:
        """Every message the topic holds (not for MQTT, which keeps none: use `Tap`)."""

        async def go() -> list[dict[str, Any]]:
            client = self.client()
            rows: list[dict[str, Any]] = []
            position = None
            try:
                while True:
                    page, position = await client.peek(self.topic, position, 1000, 0)
                    rows += page
                    if len(page) < 1000:
                        return rows
            finally:
                await client.close()

        return asyncio.run(go())

    def cleanup(self) -> None:
        asyncio.run(self._cleanup())

    async def _cleanup(self) -> None:
        if self.kind == "redis":
            import redis.asyncio as aioredis

            client = aioredis.from_url(URLS["redis"])
            await client.delete(self.topic)
            await client.aclose()
        elif self.kind == "rabbitmq":
            import aio_pika

            connection = await aio_pika.connect(URLS["rabbitmq"])
            channel = await connection.channel()
            await channel.queue_delete(self.topic)
            await connection.close()
        elif self.kind == "nats":
            import nats
            from nats.js.errors import NotFoundError

            nc = await nats.connect(URLS["nats"])
            try:
                await nc.jetstream().delete_stream(self.stream)
            except NotFoundError:
                pass
            await nc.close()
        else:
            for client_id in self.consumers:
                end_mqtt_session(client_id)


def broker_case(kind: str) -> BrokerCase:
    need(NAMES[kind], reachable("127.0.0.1", PORTS[kind]), f"nothing on :{PORTS[kind]}")
    return BrokerCase(kind, uuid.uuid4().hex[:10])


def end_mqtt_session(client_id: str) -> None:
    """Connect with clean start and no expiry: the broker forgets the persistent session."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    client.connect("127.0.0.1", 1883, clean_start=True)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


class Tap:
    """An MQTT subscriber collecting (message id, body) of everything published on a topic."""

    def __init__(self, topic: str) -> None:
        import paho.mqtt.client as mqtt

        from ductape_cli.components.brokers.base import decode_body
        from ductape_cli.components.brokers.mqtt import message_id_of

        self.messages: list[tuple[str | None, Any]] = []
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

        def on_message(client: Any, userdata: Any, msg: Any) -> None:
            body = decode_body(msg.payload)
            self.messages.append((message_id_of(msg, body), body))

        self.client.on_message = on_message
        self.client.on_subscribe = lambda *args: self.ready.set()
        self.client.on_connect = lambda client, *args: client.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", 1883)
        self.client.loop_start()
        assert self.ready.wait(10), "MQTT tap did not subscribe"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
