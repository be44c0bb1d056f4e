"""Message triggers: workflows started by messages (`on_message="broker:topic"` or `[triggers]`).

`ductape worker` runs one consumer per trigger. For each message it creates
one run whose id is derived from the workflow and the broker's identity of
the message (stream entry id, JetStream sequence, local offset; the message id
on RabbitMQ and MQTT), and acknowledges the message only after the run is in
the store. A crash between the two redelivers the message, and the derived id
finds the run already there: one run per message. The worker then executes
the runs like any other queued run.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ductape_cli.errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    from ductape_cli.components.brokers import Delivery, Subscription
    from ductape_cli.components.config import ComponentConfig
    from ductape_cli.engine.engine import Engine

logger = logging.getLogger("ductape.triggers")

BATCH = 100
FETCH_SECONDS = 0.5
RETRY_SECONDS = 2.0
MAX_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class Trigger:
    workflow: str
    broker: str
    topic: str
    source: str  # where it was declared, for error messages

    @property
    def event(self) -> str:
        return f"{self.broker}:{self.topic}"


def parse_event(value: Any, where: str) -> tuple[str, str]:
    """`"broker:topic"` -> (broker, topic), or a ConfigError naming `where`."""
    if isinstance(value, str):
        broker, sep, topic = value.partition(":")
        if sep and broker and topic:
            return broker, topic
    raise ConfigError(f'{where}: on_message must be "broker:topic", got {value!r}')


def declared_triggers(engine: Engine) -> list[Trigger]:
    """Every trigger of the project: the workflows' `on_message` and the `[triggers]` table, checked."""
    found = list(toml_triggers(engine.config))
    for tag, wf in sorted(engine.registry().by_tag.items()):
        if wf.on_message:
            broker, topic = parse_event(wf.on_message, f"workflow {tag}")
            found.append(
                Trigger(
                    tag, broker, topic, f"{wf.source_file}:{wf.source_line}: @workflow({tag!r})"
                )
            )
    if not found:
        return []  # a project without triggers never pays for (or fails on) the component tables here
    # pydantic, ~90 ms of a worker's start: only for projects that have triggers
    from ductape_cli.components.config import load_components

    components = load_components(engine.config)
    unique: dict[tuple[str, str, str], Trigger] = {}
    for trigger in found:
        if trigger.workflow not in engine.registry().by_tag:
            raise ConfigError(f"{trigger.source} names an unknown workflow {trigger.workflow!r}")
        check_topic(components, trigger)
        unique.setdefault((trigger.workflow, trigger.broker, trigger.topic), trigger)
    return list(unique.values())


def toml_triggers(config: Any) -> list[Trigger]:
    """`[triggers.WORKFLOW] on_message = "broker:topic"` entries (shape only; no imports)."""
    from ductape_cli.config import config_error, locate

    table = config.raw.get("triggers") or {}
    if not isinstance(table, dict):
        raise config_error(
            config.source, config.text, "triggers", None, "must be a table of workflows"
        )
    triggers = []
    for tag, body in table.items():
        where = f"triggers.{tag}"
        if not isinstance(body, dict):
            raise config_error(
                config.source,
                config.text,
                where,
                None,
                'must be a table with on_message = "broker:topic"',
            )
        for key in body:
            if key != "on_message":
                raise config_error(
                    config.source,
                    config.text,
                    where,
                    key,
                    f"unknown key {key!r} (known: on_message)",
                )
        if "on_message" not in body:
            raise config_error(
                config.source, config.text, where, None, "missing required key 'on_message'"
            )
        events = (
            body["on_message"] if isinstance(body["on_message"], list) else [body["on_message"]]
        )
        for event in events:
            try:
                broker, topic = parse_event(event, where)
            except ConfigError as exc:
                raise config_error(
                    config.source, config.text, where, "on_message", exc.message.split(": ", 1)[1]
                ) from None
            line = locate(config.text, where)
            triggers.append(
                Trigger(
                    tag, broker, topic, f"{config.source}{f':{line}' if line else ''}: [{where}]"
                )
            )
    return triggers


def check_toml_triggers(config: Any, components: ComponentConfig) -> None:
    """`[triggers]` entries name declared brokers and topics (workflow tags are checked by the worker)."""
    for trigger in toml_triggers(config):
        check_topic(components, trigger)


def check_topic(components: ComponentConfig, trigger: Trigger) -> None:
    broker = components.model.brokers.get(trigger.broker)
    if broker is None:
        raise ConfigError(
            f"{trigger.source} on_message {trigger.event!r}: no [brokers.{trigger.broker}] declared"
        )
    if trigger.topic not in broker.topics:
        raise ConfigError(
            f"{trigger.source} on_message {trigger.event!r}: topic {trigger.topic!r} is not in "
            f"[brokers.{trigger.broker}] topics ({', '.join(broker.topics)})"
        )


def consumer_name(project: str, group: str | None, trigger: Trigger) -> str:
    """The durable consumer (group, durable, client id) of one trigger: stable across restarts."""
    return f"{group or 'ductape-' + project}-{trigger.workflow}"


def run_id_for(trigger: Trigger, identity: str) -> str:
    digest = hashlib.sha256(
        f"{trigger.workflow}\0{trigger.broker}\0{trigger.topic}\0{identity}".encode()
    ).hexdigest()
    return f"msg_{digest[:28]}"


class TriggerConsumer:
    """Consumes one trigger's topic on its own thread and event loop until `stop` is set."""

    def __init__(
        self, engine: Engine, trigger: Trigger, stop: threading.Event, report: Callable[[str], None]
    ) -> None:
        self.engine, self.trigger, self.stop, self.report = engine, trigger, stop, report
        self.started = 0
        self.failures = 0  # in a row; the first of an outage is logged with its traceback
        self.listening = threading.Event()

    def run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            while not self.stop.is_set():
                try:
                    loop.run_until_complete(self.consume())
                except Exception as exc:  # noqa: BLE001 - a broker outage must not end the worker
                    self.failures += 1
                    delay = min(MAX_RETRY_SECONDS, RETRY_SECONDS * self.failures)
                    if (
                        self.failures == 1
                    ):  # once per outage, with the traceback; then one line per retry
                        logger.exception(
                            "trigger %s on %s failed", self.trigger.workflow, self.trigger.event
                        )
                    self.report(
                        f"✗ trigger {self.trigger.event} → {self.trigger.workflow}: {exc}; retrying in {delay:.0f}s"
                    )
                    self.stop.wait(delay)
        finally:
            loop.close()

    async def consume(self) -> None:
        from ductape_cli.components.brokers import open_client
        from ductape_cli.components.config import load_components

        engine, trigger = self.engine, self.trigger
        broker = load_components(engine.config).resolved_broker(trigger.broker)
        client = open_client(broker, engine.store)
        try:
            subscription = await client.subscribe(
                trigger.topic, consumer_name(engine.config.name, broker.model.group, trigger)
            )
            self.report(f"⇢ listening on {trigger.event} ({broker.type}) → {trigger.workflow}")
            self.listening.set()
            self.failures = 0
            try:
                while not self.stop.is_set():
                    deliveries = await subscription.fetch(BATCH, FETCH_SECONDS)
                    if not deliveries:
                        continue
                    for delivery in deliveries:
                        self.start_run(delivery)
                    await self.acknowledge(subscription, deliveries)
            finally:
                await subscription.close()
        finally:
            await client.close()

    def start_run(self, delivery: Delivery) -> str | None:
        """Create the run for one message (or find it, after a redelivery). None when refused."""
        from ductape_cli.engine.engine import new_run_id

        trigger = self.trigger
        run_id = run_id_for(trigger, delivery.identity) if delivery.identity else new_run_id()
        context = {
            "message": {
                "broker": trigger.broker,
                "topic": trigger.topic,
                "message_id": delivery.message_id,
                **delivery.meta,
            }
        }
        try:
            run, created = self.engine.start(
                trigger.workflow,
                delivery.body,
                workflow_id=run_id,
                idempotency_key=run_id if delivery.identity else None,
                context=context,
                detach=True,
            )
        except InvalidInput as exc:
            # A message the workflow refuses (its input_model) would come back forever: log and drop it.
            # Anything else (the store busy, a broken config) propagates: the message stays unacknowledged.
            logger.error(
                "trigger %s: message %s refused, dropped: %s",
                trigger.event,
                delivery.message_id or delivery.identity,
                exc.message,
            )
            self.report(
                f"✗ {trigger.event} message {delivery.message_id or delivery.identity} refused: {exc.message}"
            )
            return None
        if created:
            self.started += 1
            self.report(f"✉ {trigger.event} → {run.id} {trigger.workflow}")
        return run.id

    async def acknowledge(self, subscription: Subscription, deliveries: Sequence[Delivery]) -> None:
        """Only now, with every run in the store, may the broker forget these messages."""
        await subscription.ack(deliveries)


class Background:
    """The worker's message side: one consumer thread per trigger, and the outbox relay."""

    def __init__(
        self, engine: Engine, report: Callable[[str], None], tags: Sequence[str] | None = None
    ) -> None:
        self.engine, self.report, self.tags = engine, report, tags
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.consumers: list[TriggerConsumer] = []

    def start(self, *, triggers: bool = True) -> None:
        from ductape_cli.engine.outbox import Relay, relay_needed

        if triggers:
            for trigger in declared_triggers(self.engine):
                if self.tags and trigger.workflow not in self.tags:
                    continue  # `worker --workflow X` consumes only X's triggers
                consumer = TriggerConsumer(self.engine, trigger, self.stop_event, self.report)
                self.consumers.append(consumer)
                self._spawn(consumer.run, f"ductape-trigger-{trigger.workflow}")
        if relay_needed(self.engine):
            self._spawn(Relay(self.engine, self.stop_event).run, "ductape-outbox-relay")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def flush_outbox(self) -> int:
        """Send what the outbox holds now, on this thread (`worker --once`)."""
        from ductape_cli.engine.outbox import Relay, relay_needed

        if not relay_needed(self.engine):
            return 0
        sent = Relay(self.engine, self.stop_event).flush()
        if sent:
            self.report(f"✉ outbox: sent {sent} messages")
        return sent

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)
