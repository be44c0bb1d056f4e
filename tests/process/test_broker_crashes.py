"""Crashes around messages, on the real brokers (SIGKILL of real `ductape` processes).

* A worker killed after creating runs for a batch of messages and before
  acknowledging them: after a restart, exactly one run per message (1,000).
* A produce step killed after the broker accepted the message and before the
  step committed: the re-executed step publishes a duplicate with the same id.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import KINDS, BrokerCase, Tap, broker_case
from tests.conftest import ductape_subprocess_env
from tests.process.helpers import run, spawn, wait_for

MESSAGES = 1000

CONFIG = """\
[project]
name = "broker-crash"
workflows = "workflows"
store = ".ductape/state.db"

"""


@pytest.fixture(params=KINDS)
def case(request: pytest.FixtureRequest) -> Iterator[BrokerCase]:
    case = broker_case(request.param)
    yield case
    case.cleanup()


def _project(root: Path, toml: str, source: str) -> None:
    (root / "ductape.toml").write_text(CONFIG + toml, encoding="utf-8")
    (root / "workflows").mkdir(exist_ok=True)
    (root / "workflows" / "flows.py").write_text(textwrap.dedent(source), encoding="utf-8")


def _faulty(root: Path, fault: str, arg: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.process.faults", fault, arg, "--", *args],
        cwd=root,
        env=ductape_subprocess_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Lines:
    """Collect a process's stderr lines as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def _runs(root: Path) -> list[tuple[str, str, str]]:
    """(id, status, input) of every run, read straight from the store file."""
    import sqlite3

    path = root / ".ductape" / "state.db"
    if not path.exists():
        return []
    conn = sqlite3.connect(path, timeout=30)
    try:
        return conn.execute("SELECT id, status, input FROM runs WHERE tag = 'consumer'").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def test_worker_killed_between_run_creation_and_ack_starts_one_run_per_message(
    case: BrokerCase, tmp_path: Path, durability_report: Any
) -> None:
    _project(
        tmp_path,
        case.toml(),
        f"""
        from ductape_cli import workflow

        @workflow("consumer", on_message="events:{case.topic}")
        def consumer(ctx):
            return ctx.input["i"]
    """,
    )
    case.consumers.append(f"{case.group}-consumer")
    messages = [(f"m-{i}", {"i": i}) for i in range(MESSAGES)]
    if case.kind != "mqtt":
        case.publish(messages)
    doomed = _faulty(tmp_path, "kill-before-ack", "3", "worker")
    stderr = Lines(doomed)
    if case.kind == "mqtt":  # MQTT keeps messages only for a session that has subscribed
        wait_for(lambda: stderr.has("⇢ listening"), timeout=60, what="the trigger to subscribe")
        case.publish(messages)
    doomed.wait(timeout=180)
    stderr.thread.join(10)
    assert doomed.returncode == -9, "\n".join(stderr.lines[-20:])
    assert stderr.has("fault: killed before acknowledging")
    before = len(_runs(tmp_path))
    assert 0 < before < MESSAGES or case.kind == "mqtt"

    worker = spawn(tmp_path, "worker")
    drained = Lines(worker)  # a worker reports a line per run: an unread pipe would block it
    try:
        wait_for(
            lambda: sum(1 for r in _runs(tmp_path) if r[1] == "completed") >= MESSAGES,
            timeout=300,
            what=f"{MESSAGES} runs",
        )
        time.sleep(3)  # longer than ack_wait: anything unacknowledged would have come back by now
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        drained.thread.join(10)
    runs = _runs(tmp_path)
    inputs = sorted(json.loads(r[2])["i"] for r in runs)
    assert len(runs) == MESSAGES and inputs == list(range(MESSAGES))
    assert all(r[1] == "completed" for r in runs)
    durability_report(
        f"{case.kind} trigger: killed before ack with {before} runs created; after restart runs={len(runs)} duplicates=0"
    )


PRODUCER = """
from ductape_cli import workflow

@workflow("producer")
async def producer(ctx):
    return await ctx.messaging.produce(event="events:{topic}", message={{"order": 7}})
"""


def test_produce_killed_after_publishing_sends_a_duplicate_with_the_same_id(
    case: BrokerCase, tmp_path: Path, durability_report: Any
) -> None:
    _produce_crash(tmp_path, case.kind, case, durability_report)


def test_local_produce_killed_after_appending_keeps_one_message(
    tmp_path: Path, durability_report: Any
) -> None:
    _produce_crash(tmp_path, "local", BrokerCase("local", uuid.uuid4().hex[:10]), durability_report)


def _produce_crash(tmp_path: Path, kind: str, case: BrokerCase, durability_report: Any) -> None:
    local = kind == "local"
    toml = f'[brokers.events]\ntopics = ["{case.topic}"]\n' if local else case.toml()
    _project(tmp_path, toml, PRODUCER.format(topic=case.topic))
    tap = Tap(case.topic) if kind == "mqtt" else None
    try:
        crashed = _faulty(
            tmp_path, "kill-after-publish", kind, "run", "producer", "--workflow-id", "wf-crash"
        )
        _, err = crashed.communicate(timeout=120)
        assert crashed.returncode == -9, err
        assert "fault: killed after publishing" in err
        again = run(tmp_path, "worker", "--once", timeout=120)  # adopts the run of the dead process
        assert again.returncode == 0, again.stderr
        status = run(tmp_path, "status", "wf-crash", "--json")
        assert '"completed"' in status.stdout, status.stdout
        if tap is not None:
            wait_for(lambda: len(tap.messages) >= 2, timeout=10, what="two MQTT messages")
            seen = [m[0] for m in tap.messages]
        elif local:
            from ductape_cli.store import open_store

            store = open_store(str(tmp_path / ".ductape" / "state.db"))
            seen = [m["message_id"] for m in store.read_messages("events", case.topic)]
            store.close()
        else:
            seen = [row["message_id"] for row in case.read_all()]
    finally:
        if tap is not None:
            tap.close()
    message_id = f"wf-crash:messaging:events:{case.topic}"
    if kind in ("nats", "local"):
        assert seen == [
            message_id
        ]  # JetStream (by Nats-Msg-Id) and the store (by id) drop the duplicate
    else:
        assert seen == [message_id, message_id]
    durability_report(
        f"{kind} produce: killed after publish; copies on the broker={len(seen)}, all with id {message_id!r}"
    )


def test_relay_killed_after_publishing_resends_with_the_same_id(
    tmp_path: Path, durability_report: Any
) -> None:
    case = broker_case("redis")
    try:
        _project(tmp_path, case.toml(outbox=True), PRODUCER.format(topic=case.topic))
        produced = run(tmp_path, "run", "producer", "--workflow-id", "wf-outbox", "--json")
        assert produced.returncode == 0, produced.stderr
        assert case.read_all() == []  # in the outbox, not on the broker
        crashed = _faulty(tmp_path, "kill-after-publish", "redis", "worker", "--once")
        _, err = crashed.communicate(timeout=120)
        assert crashed.returncode == -9, err
        again = run(
            tmp_path, "worker", "--once", timeout=120
        )  # the dead relay's lease is released at once
        assert again.returncode == 0 and "outbox: sent 1 messages" in again.stderr, again.stderr
        seen = [row["message_id"] for row in case.read_all()]
    finally:
        case.cleanup()
    assert seen == ["wf-outbox:messaging:events:" + case.topic] * 2
    durability_report(
        f"redis outbox relay: killed after publish; copies on the broker={len(seen)}, same id"
    )
