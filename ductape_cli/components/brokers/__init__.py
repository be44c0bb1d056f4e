"""Message brokers behind `[brokers.NAME] type = ...`: one small client per type, imported only when used.

Every client speaks the same four verbs (`publish`, `subscribe`, `peek`,
`describe`), so messaging, triggers, the outbox relay and `ductape topics`
never care which broker they talk to.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING

from ductape_cli.components.brokers.base import (
    MESSAGE_ID_HEADER,
    BrokerClient,
    Delivery,
    Subscription,
    decode_body,
    encode_body,
)

if TYPE_CHECKING:
    from ductape_cli.components.config import ResolvedBroker
    from ductape_cli.store import Store

__all__ = [
    "MESSAGE_ID_HEADER",
    "BrokerClient",
    "Delivery",
    "Subscription",
    "client_for",
    "decode_body",
    "close_clients",
    "encode_body",
    "open_client",
]

_MODULES = {
    "local": ("ductape_cli.components.brokers.local", "LocalBroker"),
    "redis": ("ductape_cli.components.brokers.redis", "RedisBroker"),
    "rabbitmq": ("ductape_cli.components.brokers.rabbitmq", "RabbitBroker"),
    "nats": ("ductape_cli.components.brokers.nats", "NatsBroker"),
    "mqtt": ("ductape_cli.components.brokers.mqtt", "MqttBroker"),
}

# One open client per event loop and broker: a produce step must not pay for a connection.
_OPEN: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str | None], BrokerClient]
] = weakref.WeakKeyDictionary()


def open_client(broker: ResolvedBroker, store: Store | None = None) -> BrokerClient:
    """A new (not yet connected) client for `broker`; its library is imported here, not before."""
    import importlib

    module_name, class_name = _MODULES[broker.type]
    module = importlib.import_module(module_name)
    return getattr(module, class_name)(broker, store)


def client_for(broker: ResolvedBroker, store: Store | None = None) -> BrokerClient:
    """The shared client of the running event loop for `broker` (local brokers need no sharing)."""
    if broker.type == "local":
        return open_client(broker, store)
    loop = asyncio.get_running_loop()
    clients = _OPEN.setdefault(loop, {})
    key = (broker.name, broker.url)
    client = clients.get(key)
    if client is None:
        client = clients[key] = open_client(broker, store)
    return client


def close_clients(loops: list[asyncio.AbstractEventLoop]) -> None:
    """Close the shared clients of `loops` (an engine's, when it closes); each loop must be idle."""
    for loop in loops:
        clients = _OPEN.pop(loop, None)
        if not clients or loop.is_closed() or loop.is_running():
            continue
        for client in clients.values():
            try:
                loop.run_until_complete(client.close())
            except Exception:  # noqa: BLE001 - a broken connection is closed enough
                logging.getLogger("ductape.brokers").exception("closing %s failed", client.name)
