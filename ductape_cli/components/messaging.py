"""`ctx.messaging.produce(event="broker:topic", message=...)`: append to a durable topic log.

Topics live in ductape's own store (one gap-free offset sequence per topic),
so `ductape topics tail broker:topic` shows them and any process on the store
can read them. A topic must be declared in `[brokers.X] topics`.
"""

from __future__ import annotations

import json
from typing import Any

from ductape_cli.components.errors import redact
from ductape_cli.components.runtime import Component, seed_style
from ductape_cli.errors import InvalidInput


class Messaging(Component):
    kind = "messaging"

    @seed_style
    def produce(self, event: str | None = None, message: Any = None, *, broker: str | None = None, topic: str | None = None) -> Any:
        """Publish `message` (JSON) to `broker:topic`; returns ``{offset, broker, topic}``."""
        broker, topic = self.topic(event, broker, topic)
        spec = self.config.broker(broker)
        try:
            message = json.loads(json.dumps(message, ensure_ascii=False))
        except (TypeError, ValueError):
            raise InvalidInput(f"message for {broker}:{topic} must be JSON-serialisable, got {type(message).__name__}") from None
        runtime = self.runtime
        recorded = {"event": f"{broker}:{topic}", "message": redact(message, spec.secret)}

        async def work() -> Any:
            offset = runtime.store.append_message(broker, topic, message, runtime.run_id, runtime.clock.now())
            return {"offset": offset, "broker": broker, "topic": topic}

        return self._dispatch(f"messaging:{broker}:{topic}", recorded, work)

    publish = produce

    def topic(self, event: str | None, broker: str | None, topic: str | None) -> tuple[str, str]:
        """`broker:topic` (or broker= and topic=) checked against `[brokers.X] topics`."""
        if event is not None:
            broker, sep, topic = event.partition(":")
            if not sep or not broker or not topic:
                raise InvalidInput(f"messaging event must be 'broker:topic', got {event!r}")
        if not broker or not topic:
            raise InvalidInput("messaging.produce needs event='broker:topic'")
        spec = self.config.broker(broker)
        if topic not in spec.topics:
            raise self.config.error(f"brokers.{broker}", "topics", f"topic {topic!r} is not declared (topics: {', '.join(spec.topics)})")
        return broker, topic
