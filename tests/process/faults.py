"""Run the ductape CLI with one crash injected, for process tests only.

python -m tests.process.faults kill-before-ack N -- worker ...
    SIGKILL this process on the N-th trigger acknowledgement, after that batch's
    runs were created and before the broker hears the ack.
python -m tests.process.faults kill-after-publish TYPE -- run ...
    SIGKILL right after a broker of TYPE accepted a produce, before the step commits.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from typing import Any

_CLASSES = {
    "local": ("ductape_cli.components.brokers.local", "LocalBroker"),
    "redis": ("ductape_cli.components.brokers.redis", "RedisBroker"),
    "rabbitmq": ("ductape_cli.components.brokers.rabbitmq", "RabbitBroker"),
    "nats": ("ductape_cli.components.brokers.nats", "NatsBroker"),
    "mqtt": ("ductape_cli.components.brokers.mqtt", "MqttBroker"),
}


def _die() -> None:
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def kill_before_ack(n: int) -> None:
    from ductape_cli.engine.triggers import TriggerConsumer

    original = TriggerConsumer.acknowledge
    calls = [0]

    async def acknowledge(self: Any, subscription: Any, deliveries: Any) -> None:
        calls[0] += 1
        if calls[0] >= n:
            print(f"fault: killed before acknowledging {len(deliveries)} messages", file=sys.stderr)
            _die()
        await original(self, subscription, deliveries)

    TriggerConsumer.acknowledge = acknowledge  # type: ignore[method-assign]


def kill_after_publish(kind: str) -> None:
    module_name, class_name = _CLASSES[kind]
    cls = getattr(importlib.import_module(module_name), class_name)
    original = cls.publish

    async def publish(self: Any, *args: Any, **kwargs: Any) -> Any:
        receipt = await original(self, *args, **kwargs)
        print(f"fault: killed after publishing {receipt}", file=sys.stderr)
        _die()
        return receipt

    cls.publish = publish


def main() -> None:
    fault, arg, sep, *args = sys.argv[1:]
    assert sep == "--", __doc__
    {
        "kill-before-ack": lambda: kill_before_ack(int(arg)),
        "kill-after-publish": lambda: kill_after_publish(arg),
    }[fault]()
    from ductape_cli.cli.app import main as ductape

    sys.argv = ["ductape", *args]
    ductape()


if __name__ == "__main__":
    main()
