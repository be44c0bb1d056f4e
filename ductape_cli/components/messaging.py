"""`ctx.messaging.produce(event="broker:topic", message=...)`: publish to a declared topic.

A produce is a journaled step (or part of the step it is called in), and the
message carries an id derived from the run and that step, so a step executed
again after a crash publishes a duplicate with the *same* id: publishing is
at-least-once, and a consumer that drops ids it has seen gets each message once.

With `[brokers.X] outbox = true` the message is not sent by the step: it is
stored in the same transaction as the step's completion and the worker's
relay sends it (see `engine/outbox.py`), so a completed step never loses one.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from ductape_cli.components.errors import redact
from ductape_cli.components.runtime import Component, seed_style
from ductape_cli.errors import InvalidInput


class Messaging(Component):
    kind = "messaging"

    @seed_style
    def produce(
        self,
        event: str | None = None,
        message: Any = None,
        *,
        broker: str | None = None,
        topic: str | None = None,
    ) -> Any:
        """Publish `message` (JSON) to `broker:topic`; returns ``{message_id, broker, topic, ...receipt}``."""
        from ductape_cli.engine.steps import IN_STEP

        broker, topic = self.topic(event, broker, topic)
        resolved = self.config.resolved_broker(broker)
        try:
            message = json.loads(json.dumps(message, ensure_ascii=False))
        except (TypeError, ValueError):
            raise InvalidInput(
                f"message for {broker}:{topic} must be JSON-serialisable, got {type(message).__name__}"
            ) from None
        runtime = self.runtime
        recorded = {"event": f"{broker}:{topic}", "message": redact(message, resolved.model.secret)}
        own_step = IN_STEP.get() is None  # outside any step: this produce becomes a step of its own

        async def work() -> Any:
            step = IN_STEP.get()
            message_id = self.message_id(step, own_step, broker, topic, message)
            sent = {"message_id": message_id, "broker": broker, "topic": topic}
            execution = runtime.execution
            if (
                resolved.model.outbox
                and execution is not None
                and step is not None
                and not self._in_rollback(step)
            ):
                from ductape_cli.store.sqlite_outbox import OutboxMessage

                queued = OutboxMessage(
                    message_id,
                    broker,
                    topic,
                    message,
                    execution.view.run_id,
                    step,
                    runtime.clock.now(),
                )
                execution.queue_outbox(step, message_id, queued)
                return {**sent, "outbox": True}
            from ductape_cli.components.brokers import client_for, open_client

            if (
                execution is None
            ):  # direct use: this loop may be gone after the call, so no shared client
                client = open_client(resolved, runtime.store)
                try:
                    receipt = await client.publish(topic, message, message_id)
                finally:
                    await client.close()
            else:
                receipt = await client_for(resolved, runtime.store).publish(
                    topic, message, message_id, run_id=execution.view.run_id
                )
            return {**sent, **receipt}

        return self._dispatch(f"messaging:{broker}:{topic}", recorded, work)

    publish = produce

    def message_id(
        self, step: str | None, own_step: bool, broker: str, topic: str, message: Any
    ) -> str:
        """Deterministic per run and step: ``RUN:STEP`` for a produce step, ``RUN:STEP:DIGEST`` inside
        a step of yours (the digest of topic and message tells several produces in one step apart)."""
        run_id = self.runtime.run_id
        if run_id is None or step is None:
            return uuid.uuid4().hex  # direct use from Python: no run, nothing to re-execute
        if own_step:
            return f"{run_id}:{step}"
        canonical = json.dumps(
            [broker, topic, message], sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return f"{run_id}:{step}:{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"

    def _in_rollback(self, step: str) -> bool:
        """A rollback handler runs under its step's tag after that step completed: no commit follows it."""
        run = self.runtime.run
        return run is not None and run.recorded(step)

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
            raise self.config.error(
                f"brokers.{broker}",
                "topics",
                f"topic {topic!r} is not declared (topics: {', '.join(spec.topics)})",
            )
        return broker, topic
