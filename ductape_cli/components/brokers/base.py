"""What every broker client offers, and how a message looks on the wire.

The body is the message as UTF-8 JSON. The id travels beside it, never
inside: the `Ductape-Message-Id` header (RabbitMQ also gets `message_id`,
NATS `Nats-Msg-Id`, MQTT a v5 user property, Redis an `id` field next to
`body`). Consumers that see the same id twice are seeing one message twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

MESSAGE_ID_HEADER = "Ductape-Message-Id"


def encode_body(message: Any) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_body(data: bytes | str) -> Any:
    """A message body as JSON when it is JSON, else as text (foreign producers send anything)."""
    text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else data
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass
class Delivery:
    """One received message.

    `identity` is what the broker itself calls this message (stream entry id,
    JetStream sequence, store offset) or, where the broker has none (RabbitMQ,
    MQTT), the producer's message id; None when there is neither.
    """

    topic: str
    body: Any
    message_id: str | None
    identity: str | None
    meta: dict[str, Any] = field(default_factory=dict)
    handle: Any = None


class Subscription(Protocol):
    async def fetch(self, limit: int, timeout: float) -> list[Delivery]:
        """Up to `limit` messages, waiting at most `timeout` seconds for the first."""
        ...

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Tell the broker these are handled: they will not be delivered again."""
        ...

    async def close(self) -> None: ...


class BrokerClient(Protocol):
    name: str
    type: str

    async def publish(
        self, topic: str, message: Any, message_id: str, run_id: str | None = None
    ) -> dict[str, Any]:
        """Publish and wait for the broker to have it; returns broker-specific receipt fields."""
        ...

    async def subscribe(self, topic: str, consumer: str) -> Subscription:
        """A durable subscription named `consumer`: it resumes where it left off after a crash."""
        ...

    async def peek(
        self, topic: str, start: str | None, limit: int, wait: float
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Messages from position `start` without consuming them, and the position after them."""
        ...

    async def describe(self, topics: Sequence[str]) -> list[dict[str, Any]]:
        """One row per topic: ``{topic, messages, detail}`` as far as the broker can tell."""
        ...

    async def close(self) -> None: ...


def peek_row(position: Any, message_id: str | None, body: Any, **extra: Any) -> dict[str, Any]:
    """The shape `ductape topics tail` prints for every broker type."""
    return {"position": position, "message_id": message_id, "message": body, **extra}
