"""`ductape topics`: what each declared broker holds, and tailing one topic, for every broker type.

Local topics live in the store; the others are asked through their client
(`describe`, `peek`), which never consumes: Redis and NATS read their logs,
RabbitMQ peeks at the queue and puts the messages back, MQTT (which keeps no
log) shows what arrives while it listens.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ductape_cli.errors import InvalidInput

if TYPE_CHECKING:
    from ductape_cli.components.brokers import BrokerClient
    from ductape_cli.engine.engine import Engine

logger = logging.getLogger("ductape.topics")

PAGE = 1000
FOLLOW_WAIT = 1.0


def list_topics(engine: Engine) -> list[dict[str, Any]]:
    """One row per topic of every declared broker, plus local topics that hold messages undeclared."""
    rows: list[dict[str, Any]] = []
    declared = engine.config.raw.get("brokers") or {}
    store_topics = engine.store.list_topics() if engine.has_store() else []
    outbox = (
        {(o["broker"], o["topic"]): o for o in engine.store.outbox_status()}
        if engine.has_store()
        else {}
    )
    if declared:
        from ductape_cli.components.brokers import open_client
        from ductape_cli.components.config import load_components

        components = load_components(engine.config)
        for name, broker in components.model.brokers.items():
            try:
                client = open_client(components.resolved_broker(name), engine.store)
                described = asyncio.run(_describe(client, broker.topics))
            except Exception as exc:  # noqa: BLE001 - one unreachable broker must not hide the others
                logger.debug("describing broker %s failed", name, exc_info=True)
                described = [
                    {"topic": t, "messages": None, "detail": f"unreachable: {exc}"}
                    for t in broker.topics
                ]
            for row in described:
                rows.append({"broker": name, "type": broker.type, **row})
    known = {(r["broker"], r["topic"]) for r in rows}
    for topic in store_topics:
        if (topic["broker"], topic["topic"]) not in known:
            rows.append(
                {
                    "broker": topic["broker"],
                    "type": "local",
                    "topic": topic["topic"],
                    "messages": topic["messages"],
                    "last_at": topic["last_at"],
                }
            )
    for row in rows:
        pending = outbox.get((row["broker"], row["topic"]))
        if pending is not None:
            row["outbox_pending"] = pending["pending"]
            if pending["last_error"]:
                row["outbox_error"] = pending["last_error"]
    return rows


async def _describe(client: BrokerClient, topics: list[str]) -> list[dict[str, Any]]:
    try:
        return await client.describe(topics)
    finally:
        await client.close()


def tail(
    engine: Engine, event: str, start: str | None, follow: bool
) -> Iterator[list[dict[str, Any]]]:
    """Pages of messages of `broker:topic` from position `start`; with `follow`, forever."""
    broker, sep, topic = event.partition(":")
    if not sep or not broker or not topic:
        raise InvalidInput(f"topic must be BROKER:TOPIC, got {event!r}")
    client = _client_for(engine, broker, topic, follow)
    if client.type in ("local", "rabbitmq", "nats", "mqtt") and start is not None:
        if not start.isdigit():
            raise InvalidInput(f"--from for a {client.type} topic is a number, got {start!r}")
    if client.type == "nats" and start is not None and int(start) < 1:
        raise InvalidInput("--from for a nats topic is a stream sequence, starting at 1")
    loop = asyncio.new_event_loop()
    try:
        position = start
        while True:
            wait = FOLLOW_WAIT if follow else (2.0 if client.type == "mqtt" else 0.0)
            rows, position = loop.run_until_complete(client.peek(topic, position, PAGE, wait))
            if rows:
                yield rows
            if not follow and len(rows) < PAGE:
                return
            if not rows:
                time.sleep(0.05)
    finally:
        loop.run_until_complete(client.close())
        loop.close()


def _client_for(engine: Engine, broker: str, topic: str, follow: bool) -> BrokerClient:
    from ductape_cli.components.brokers import open_client
    from ductape_cli.components.config import load_components

    declared = engine.config.raw.get("brokers") or {}
    if broker in declared:
        components = load_components(engine.config)
        if (
            topic not in components.broker(broker).topics
            and components.broker(broker).type != "local"
        ):
            raise InvalidInput(
                f"no topic {broker}:{topic}: it is not declared in [brokers.{broker}] topics"
            )
        resolved = components.resolved_broker(broker)
        if resolved.type == "local":
            _check_local(engine, broker, topic, topic in resolved.model.topics, follow)
        return open_client(resolved, engine.store)
    _check_local(engine, broker, topic, False, follow)
    from ductape_cli.components.brokers.local import LocalBroker
    from ductape_cli.components.config import Broker, ResolvedBroker

    return LocalBroker(
        ResolvedBroker(broker, None, Broker.model_validate({"topics": [topic]})), engine.store
    )


def _check_local(engine: Engine, broker: str, topic: str, declared: bool, follow: bool) -> None:
    if declared or follow:
        return
    if not engine.has_store() or not engine.store.read_messages(broker, topic, 0, 1):
        raise InvalidInput(
            f"no topic {broker}:{topic}: it is not declared in [brokers.{broker}] topics and holds no messages"
        )
