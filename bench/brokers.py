"""Messages per second end to end on every broker: publish -> trigger -> run completed.

For each broker type a fresh project gets one topic and a workflow started by
it (`on_message`); a `ductape worker` subprocess consumes. The script then
publishes N messages straight to the broker (as another system would) and
times until N runs are completed in the store. A second figure times
workflows whose single step is a produce (`ctx.messaging.produce`), run one
after another in-process, directly and through the outbox (the relay then
sends them: its time is included). MQTT is published in windows that keep
the broker's per-session queue below Mosquitto's default limit.

    python bench/brokers.py [--messages 2000] [--produce 500] [--only redis,nats] [--concurrency 2] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

URLS = {
    "local": None,
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
    "nats": "nats://127.0.0.1:4222",
    "mqtt": "mqtt://127.0.0.1:1883",
}
MQTT_WINDOW = 400
PORTS = {"redis": 6379, "rabbitmq": 5672, "nats": 4222, "mqtt": 1883}


def reachable(kind: str) -> bool:
    if kind == "local":
        return True
    try:
        with socket.create_connection(("127.0.0.1", PORTS[kind]), timeout=0.5):
            return True
    except OSError:
        return False


class Project:
    def __init__(self, root: Path, kind: str, outbox: bool = False) -> None:
        self.root, self.kind = root, kind
        token = uuid.uuid4().hex[:8]
        self.topic = f"bench/{token}" if kind == "mqtt" else f"bench-{token}"
        self.stream = f"BENCH_{token.upper()}"
        lines = [
            "[project]",
            'name = "bench"',
            "",
            "[brokers.events]",
            f'topics = ["{self.topic}"]',
        ]
        if kind != "local":
            lines += [f'type = "{kind}"', f'url = "{URLS[kind]}"']
        if kind == "nats":
            lines.append(f'stream = "{self.stream}"')
        if outbox:
            lines.append("outbox = true")
        root.mkdir(parents=True)
        (root / "ductape.toml").write_text("\n".join(lines) + "\n")
        (root / "workflows").mkdir()
        (root / "workflows" / "flows.py").write_text(
            textwrap.dedent(f"""
            from ductape_cli import workflow

            @workflow("consumer", on_message="events:{self.topic}")
            def consumer(ctx):
                return ctx.input["i"]

            @workflow("producer")
            async def producer(ctx):
                return await ctx.messaging.produce(event="events:{self.topic}", message={{"i": ctx.input["i"]}})
        """)
        )

    def broker(self) -> Any:
        from ductape_cli.components.config import load_components
        from ductape_cli.config import load_config

        return load_components(load_config(self.root)).resolved_broker("events")

    def completed(self) -> int:
        path = self.root / ".ductape" / "state.db"
        if not path.exists():
            return 0
        conn = sqlite3.connect(path, timeout=30)
        try:
            return int(
                conn.execute(
                    "SELECT COUNT(*) FROM runs WHERE tag = 'consumer' AND status = 'completed'"
                ).fetchone()[0]
            )
        except sqlite3.OperationalError:
            return 0
        finally:
            conn.close()

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

            nc = await nats.connect(URLS["nats"])
            try:
                await nc.jetstream().delete_stream(self.stream)
            except Exception:  # noqa: BLE001 - nothing to delete
                pass
            await nc.close()
        elif self.kind == "mqtt":
            import paho.mqtt.client as mqtt

            client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2,
                client_id="ductape-bench-consumer",
                protocol=mqtt.MQTTv5,
            )
            client.connect("127.0.0.1", 1883, clean_start=True)
            client.disconnect()


def env_for(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["DUCTAPE_PROJECT"] = str(root)
    env.pop("DUCTAPE_STORE", None)
    return env


def end_to_end(base: Path, kind: str, messages: int, concurrency: int) -> dict[str, float]:
    """Publish `messages` to the broker; seconds until the worker completed that many runs."""
    from ductape_cli.components.brokers import open_client

    project = Project(base / f"e2e-{kind}", kind)
    log = open(project.root / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "ductape_cli", "worker", "--concurrency", str(concurrency)],
        cwd=project.root,
        env=env_for(project.root),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while "listening" not in (project.root / "worker.log").read_text():
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError(
                    f"{kind}: the worker did not subscribe: {(project.root / 'worker.log').read_text()[-800:]}"
                )
            time.sleep(0.05)

        async def publish() -> float:
            from ductape_cli.store import open_store

            store = (
                open_store(str(project.root / ".ductape" / "state.db")) if kind == "local" else None
            )
            client = open_client(project.broker(), store)
            start = time.perf_counter()
            for i in range(messages):
                if kind == "mqtt" and i and i % MQTT_WINDOW == 0:
                    # Mosquitto drops what exceeds a session's queue (max_queued_messages, 1,000 by
                    # default): keep the backlog under it, as an MQTT producer must.
                    while project.completed() < i - MQTT_WINDOW:
                        await asyncio.sleep(0.01)
                await client.publish(project.topic, {"i": i}, f"bench-{i}")
            seconds = time.perf_counter() - start
            await client.close()
            return seconds

        start = time.perf_counter()
        publish_seconds = asyncio.run(publish())
        deadline = time.monotonic() + 600
        while project.completed() < messages:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{kind}: only {project.completed()} of {messages} runs completed"
                )
            time.sleep(0.02)
        total = time.perf_counter() - start
    finally:
        worker.terminate()
        worker.wait(60)
        log.close()
        project.cleanup()
    return {
        "publish_per_s": messages / publish_seconds,
        "e2e_per_s": messages / total,
        "e2e_seconds": total,
    }


def produce_steps(base: Path, kind: str, count: int, outbox: bool) -> float:
    """Workflows of one produce step, one after another; with the outbox, until the relay sent them all."""
    from ductape_cli.config import load_config
    from ductape_cli.engine.engine import Engine
    from ductape_cli.engine.outbox import Relay

    project = Project(
        base / f"produce-{kind}-{'outbox' if outbox else 'direct'}", kind, outbox=outbox
    )
    engine = Engine(load_config(project.root))
    try:
        engine.run("producer", {"i": -1})  # warm-up: definition compiled, connection open
        start = time.perf_counter()
        for i in range(count):
            result = engine.run("producer", {"i": i})
            if result["status"] != "completed":
                raise RuntimeError(f"{kind}: producer {result['status']}: {result['error']}")
        if outbox:
            import threading

            Relay(engine, threading.Event()).flush()
        return count / (time.perf_counter() - start)
    finally:
        engine.close()
        project.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--produce", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--only", default=",".join(URLS))
    parser.add_argument("--markdown")
    args = parser.parse_args()
    kinds = [k for k in args.only.split(",") if k]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ductape-bench-brokers-") as tmp:
        base = Path(tmp)
        for kind in kinds:
            if not reachable(kind):
                print(f"{kind}: skipped (nothing on :{PORTS[kind]})", file=sys.stderr)
                continue
            print(f"{kind}: end to end with {args.messages} messages ...", file=sys.stderr)
            e2e = end_to_end(base, kind, args.messages, args.concurrency)
            print(
                f"{kind}: {args.produce} produce steps, direct and through the outbox ...",
                file=sys.stderr,
            )
            direct = produce_steps(base, kind, args.produce, outbox=False)
            outbox = produce_steps(base, kind, args.produce, outbox=True)
            rows.append((kind, e2e["publish_per_s"], e2e["e2e_per_s"], direct, outbox))
    header = "| broker | publish msg/s (client) | end to end msg/s (publish → run completed) | produce-step workflows/s | same, outbox + relay |\n|---|---:|---:|---:|---:|"
    lines = [header] + [
        f"| {k} | {p:,.0f} | {e:,.0f} | {d:,.0f} | {o:,.0f} |" for k, p, e, d, o in rows
    ]
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")


if __name__ == "__main__":
    main()
