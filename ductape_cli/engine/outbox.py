"""The outbox relay: sends the messages steps stored with their completion (`[brokers.X] outbox = true`).

Runs in `ductape worker` (`worker --once` sends what is waiting, then exits).
A message is leased while being sent, marked sent once the broker has it, and
retried with a growing delay when the broker refuses; several workers on one
store never send the same message at once. A crash after the broker took a
message but before it was marked sent sends it again, with the same id (at
once when the dead sender was on this host, else when its lease expires).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine
    from ductape_cli.store.sqlite_outbox import OutboxMessage

logger = logging.getLogger("ductape.outbox")

BATCH = 200
LEASE_SECONDS = 60.0
IDLE_SECONDS = 0.2
MAX_RETRY_SECONDS = 60.0


def relay_needed(engine: Engine) -> bool:
    """Whether any broker sends through the outbox (a broken config is reported elsewhere)."""
    if not engine.config.raw.get("brokers"):
        return False
    from ductape_cli.components.config import load_components

    try:
        return any(b.outbox for b in load_components(engine.config).model.brokers.values())
    except Exception:  # noqa: BLE001 - `components check` and the first produce report config errors
        logger.exception("cannot read [brokers]; the outbox relay is off")
        return False


class Relay:
    def __init__(self, engine: Engine, stop: threading.Event) -> None:
        self.engine, self.stop = engine, stop
        self.clients: dict[str, Any] = {}
        self.sent = 0

    def run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            while not self.stop.is_set():
                try:
                    busy = loop.run_until_complete(self.send_batch())
                except Exception:  # noqa: BLE001 - the store being busy must not end the relay
                    logger.exception("outbox relay failed; retrying")
                    busy = 0
                if not busy:
                    self.stop.wait(IDLE_SECONDS)
        finally:
            loop.run_until_complete(self.close())
            loop.close()

    def flush(self) -> int:
        """Send everything waiting now (for `worker --once` and tests); returns messages sent."""
        loop = asyncio.new_event_loop()
        try:
            while loop.run_until_complete(self.send_batch()):
                pass
            loop.run_until_complete(self.close())
        finally:
            loop.close()
        return self.sent

    async def send_batch(self) -> int:
        """Claim and send one batch; returns how many were claimed (0: nothing waiting)."""
        from ductape_cli.engine.leases import HOST, owner_is_dead

        store, clock = self.engine.store, self.engine.clock
        # A relay that died mid-send on this host releases its messages at once, not after the lease.
        dead = [
            o for o in store.outbox_senders_on_host(HOST) if owner_is_dead(o, self.engine.owner)
        ]
        messages = store.claim_outbox(self.engine.owner, clock.now(), LEASE_SECONDS, BATCH, dead)
        sent: list[str] = []
        down: dict[
            str, str
        ] = {}  # broker -> error: the rest of the batch for it waits for the retry
        try:
            for message in messages:
                delay = min(MAX_RETRY_SECONDS, 0.5 * 2 ** min(message.attempts, 10))
                if message.broker in down:
                    store.outbox_failed(
                        message.message_id, down[message.broker], clock.now() + delay
                    )
                    continue
                try:
                    await self.send(message)
                except Exception as exc:  # noqa: BLE001 - one refused message must not hold back the rest
                    logger.exception(
                        "outbox: sending %s to %s:%s failed; retry in %.1fs",
                        message.message_id,
                        message.broker,
                        message.topic,
                        delay,
                    )
                    down[message.broker] = f"{type(exc).__name__}: {exc}"
                    store.outbox_failed(
                        message.message_id, down[message.broker], clock.now() + delay
                    )
                    await self.drop_client(message.broker)
                else:
                    sent.append(message.message_id)
        finally:
            if sent:
                store.outbox_sent(sent, clock.now())
                self.sent += len(sent)
        return len(messages)

    async def send(self, message: OutboxMessage) -> None:
        from ductape_cli.components.brokers import open_client
        from ductape_cli.components.config import load_components

        client = self.clients.get(message.broker)
        if client is None:
            broker = load_components(self.engine.config).resolved_broker(message.broker)
            client = self.clients[message.broker] = open_client(broker, self.engine.store)
        await client.publish(
            message.topic, message.message, message.message_id, run_id=message.run_id
        )

    async def drop_client(self, broker: str) -> None:
        """Forget a connection that failed, so the next message opens a fresh one."""
        client = self.clients.pop(broker, None)
        if client is not None:
            try:
                await client.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                logger.exception("outbox: closing the connection to %s failed", broker)

    async def close(self) -> None:
        for broker in list(self.clients):
            await self.drop_client(broker)
