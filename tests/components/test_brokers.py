"""Messaging on the real brokers: produce with a run-and-step id, triggers, the outbox, `topics`.

Each test uses its own stream / queue / subject (tests/brokers.py) and removes it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ductape_cli.engine.triggers import Trigger, run_id_for
from ductape_cli.errors import ConfigError
from tests.brokers import KINDS, BrokerCase, Tap, broker_case


@pytest.fixture(autouse=True)
def short_fetches(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stopping worker waits for its trigger consumers' fetch in flight (FETCH_SECONDS, a 0.5 s
    long-poll); these tests stop dozens of workers, so they poll the brokers in 50 ms fetches."""
    from ductape_cli.engine import triggers

    monkeypatch.setattr(triggers, "FETCH_SECONDS", 0.05)


@pytest.fixture(params=KINDS)
def case(request: pytest.FixtureRequest) -> Iterator[BrokerCase]:
    case = broker_case(request.param)
    yield case
    case.cleanup()


PRODUCER = """
from ductape_cli import workflow

@workflow("producer")
async def producer(ctx):
    sent = []
    for n in range(ctx.input["count"]):
        sent.append(await ctx.messaging.produce(event="events:{topic}", message={{"n": n}}))
    return sent
"""

CONSUMER = """
from ductape_cli import workflow

@workflow("consumer", on_message="events:{topic}")
async def consumer(ctx):
    return {{"input": ctx.input, "message": ctx.context["message"]}}
"""


class Background:
    """`Worker.run()` on a thread, with its report lines; stopped by `close`."""

    def __init__(self, engine: Any) -> None:
        from ductape_cli.engine.worker import Worker

        self.lines: list[str] = []
        self.worker = Worker(engine, report=self.lines.append, poll_interval=0.05)
        self.thread = threading.Thread(target=self.worker.run, daemon=True)
        self.thread.start()

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; worker said: {self.lines[-5:]}")

    def close(self) -> None:
        self.worker.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


def _completed(engine: Any, tag: str) -> list[Any]:
    from ductape_cli.engine.engine import Engine

    fresh = Engine(engine.config)  # this thread's view of the store, not the worker's
    try:
        return [r for r in fresh.store.list_runs(tag=tag, limit=10_000) if r.status == "completed"]
    finally:
        fresh.close()


def test_produce_and_trigger_round_trip(case: BrokerCase, make: Any) -> None:
    engine = make(case.toml(), PRODUCER.format(topic=case.topic), name="producer")
    (engine.config.root / "workflows" / "consumer.py").write_text(CONSUMER.format(topic=case.topic))
    engine = type(engine)(engine.config)
    case.consumers.append(f"{case.group}-consumer")
    worker = Background(engine)
    try:
        worker.wait(
            lambda: any(line.startswith("⇢ listening") for line in worker.lines),
            "the trigger to subscribe",
        )
        result = engine.run("producer", {"count": 3})
        assert result["status"] == "completed", result["error"]
        run_id = result["workflow_id"]
        ids = [f"{run_id}:messaging:events:{case.topic}"] + [
            f"{run_id}:messaging:events:{case.topic}#{n}" for n in (2, 3)
        ]
        assert [s["message_id"] for s in result["output"]] == ids
        worker.wait(lambda: len(_completed(engine, "consumer")) == 3, "three consumer runs")
    finally:
        worker.close()
    runs = sorted(_completed(engine, "consumer"), key=lambda r: r.input["n"])
    assert [r.input for r in runs] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [r.context["message"]["message_id"] for r in runs] == ids
    assert [r.output["message"]["message_id"] for r in runs] == ids
    trigger = Trigger("consumer", "events", case.topic, "test")
    epoch = ""
    if case.kind == "nats":
        import asyncio

        async def created() -> str:
            client = case.client()
            await client.js()
            await client.close()
            return str(client.epoch)

        epoch = asyncio.run(created())
        assert epoch  # the stream's creation time
    for run in runs:
        identity = {
            "redis": f"stream:{run.context['message'].get('stream_id')}",
            "nats": f"seq:{epoch}:{run.context['message'].get('sequence')}",
        }.get(case.kind, f"message:{run.context['message']['message_id']}")
        assert run.id == run_id_for(trigger, identity)
    assert len(_completed(engine, "consumer")) == 3  # nothing more arrived once acknowledged


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            'type = "kafka"\ntopics = ["t"]',
            r"type: Input should be 'local', 'redis', 'rabbitmq', 'nats' or 'mqtt'",
        ),
        ('type = "redis"\ntopics = ["t"]', r"type = 'redis' needs url = \"redis://...\""),
        (
            'type = "nats"\nurl = "redis://127.0.0.1"\ntopics = ["t"]',
            r"url for type = 'nats' must start with nats:// or tls://",
        ),
        (
            'type = "redis"\nurl = "redis://x"\ntopics = ["t"]\nstream = "S"',
            r"stream does not apply to type = 'redis' \(it is for nats\)",
        ),
        (
            'type = "mqtt"\nurl = "mqtt://x"\ntopics = ["t"]\nqos = 0',
            r"qos: Input should be 1 or 2",
        ),
        ('topics = ["t"]\nurl = "redis://x"', r"url does not apply to type = 'local'"),
        ('type = "mqtt"\nurl = "mqtt://x"\ntopics = ["a/#"]', r"invalid topic name 'a/#'"),
        (
            'type = "nats"\nurl = "nats://x"\ntopics = ["t"]\nack_wait = "10ms"',
            r"ack_wait must be at least 1s",
        ),
        (
            'type = "redis"\nurl = "redis://x"\ntopics = ["t"]\nexchange = "x"',
            r"unknown key 'exchange'",
        ),
    ],
)
def test_broker_tables_are_validated(runtime: Any, table: str, message: str) -> None:
    rt = runtime(f"[brokers.events]\n{table}\n")
    with pytest.raises(ConfigError, match=r"ductape.toml:\d+: \[brokers.events\] .*" + message):
        rt.components  # noqa: B018 - validation happens on first use


def _cli(args: list[str]) -> Any:
    from ductape_cli.cli import topic_cmds

    app = typer.Typer()
    topic_cmds.register(app)
    return CliRunner().invoke(app, args, catch_exceptions=False)


def test_components_check_fills_broker_urls_and_checks_triggers(
    runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UNSET_BROKER_URL", raising=False)
    runtime('[brokers.events]\ntype = "redis"\nurl = "${UNSET_BROKER_URL}"\ntopics = ["t"]\n')
    report = json.loads(_cli(["components", "check", "--json"]).stdout)
    assert report["problems"] == [
        f"{report['problems'][0].split(': [')[0]}: [brokers.events] url: environment variable UNSET_BROKER_URL is not set"
    ]
    monkeypatch.setenv("UNSET_BROKER_URL", "amqp://guest:secret@127.0.0.1:5672/")
    result = _cli(["components", "check", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["problems"][0].endswith(
        "url for type = 'redis' must start with redis:// or rediss:// or unix://, got 'amqp://guest:***@127.0.0.1:5672/'"
    )
    monkeypatch.setenv("UNSET_BROKER_URL", "redis://127.0.0.1:6379/0")
    checked = _cli(["components", "check", "--json"])
    assert (
        checked.exit_code == 0
        and json.loads(checked.stdout)["components"][0]["detail"]
        == "redis ${UNSET_BROKER_URL}; topics: t"
    )


@pytest.mark.parametrize(
    ("triggers", "message"),
    [
        (
            '[triggers.consumer]\non_message = "events"',
            r"\[triggers.consumer\] on_message must be \"broker:topic\", got 'events'",
        ),
        (
            '[triggers.consumer]\non_message = "nope:t"',
            r"on_message 'nope:t': no \[brokers.nope\] declared",
        ),
        (
            '[triggers.consumer]\non_message = "events:other"',
            r"topic 'other' is not in \[brokers.events\] topics \(t\)",
        ),
        (
            '[triggers.consumer]\nworkflow = "x"\non_message = "events:t"',
            r"unknown key 'workflow' \(known: on_message\)",
        ),
        ("[triggers]\nconsumer = 3", r"\[triggers.consumer\] must be a table"),
    ],
)
def test_trigger_tables_are_validated_by_components_check(
    runtime: Any, triggers: str, message: str
) -> None:
    runtime(f'[brokers.events]\ntopics = ["t"]\n\n{triggers}\n')
    result = _cli(["components", "check"])
    assert result.exit_code == 2
    assert re.search(r"ductape.toml(:\d+)?: .*" + message, result.stderr), result.stderr


def test_triggers_from_the_decorator_and_the_table_are_merged(make: Any) -> None:
    from ductape_cli.engine.triggers import declared_triggers

    engine = make(
        '[brokers.events]\ntopics = ["a", "b"]\n\n[triggers.consumer]\non_message = ["events:a", "events:b"]\n',
        "from ductape_cli import workflow\n\n@workflow('consumer', on_message='events:a')\ndef consumer(ctx):\n    return ctx.input\n",
    )
    assert sorted((t.workflow, t.event) for t in declared_triggers(engine)) == [
        ("consumer", "events:a"),
        ("consumer", "events:b"),
    ]


def test_on_message_must_name_broker_and_topic() -> None:
    from ductape_cli import workflow
    from ductape_cli.errors import DefinitionError

    with pytest.raises(
        DefinitionError, match=r"workflow w: on_message must be \"broker:topic\", got 'orders'"
    ):
        workflow("w", on_message="orders")(lambda ctx: None)


def test_a_trigger_for_an_unknown_workflow_stops_the_worker_at_start(make: Any) -> None:
    from ductape_cli.engine.worker import Worker

    engine = make(
        '[brokers.events]\ntopics = ["t"]\n\n[triggers.ghost]\non_message = "events:t"\n', ""
    )
    with pytest.raises(
        ConfigError, match=r"ductape.toml:\d+: \[triggers.ghost\] names an unknown workflow 'ghost'"
    ):
        Worker(engine).run()


# -- local broker triggers and the outbox (no service needed) ---------------------------------------


def test_local_topic_trigger_from_the_toml_table_acknowledges_after_the_run_exists(
    make: Any,
) -> None:
    engine = make(
        '[brokers.events]\ntopics = ["t"]\n\n[triggers.consumer]\non_message = "events:t"\n',
        "from ductape_cli import workflow\n\n@workflow('consumer')\ndef consumer(ctx):\n    return ctx.input\n",
    )
    import asyncio

    from ductape_cli.components import ComponentRuntime

    direct = ComponentRuntime(engine.config)
    for n in range(3):
        asyncio.run(direct.messaging.produce(event="events:t", message={"n": n}))
    worker = Background(engine)
    try:
        worker.wait(lambda: len(_completed(engine, "consumer")) == 3, "three runs")
    finally:
        worker.close()
    runs = _completed(engine, "consumer")
    assert sorted(r.output["n"] for r in runs) == [0, 1, 2]
    trigger = Trigger("consumer", "events", "t", "test")
    assert sorted(r.id for r in runs) == sorted(
        run_id_for(trigger, f"offset:{n}") for n in range(3)
    )
    assert engine.store.consumer_offset("ductape-components-test-consumer", "events", "t") == 3


def test_outbox_messages_are_sent_by_the_worker_after_the_step_commits(
    case: BrokerCase, make: Any
) -> None:
    from ductape_cli.engine.worker import Worker

    engine = make(case.toml(outbox=True), PRODUCER.format(topic=case.topic), name="producer")
    tap = Tap(case.topic) if case.kind == "mqtt" else None
    try:
        result = engine.run("producer", {"count": 2})
        assert result["status"] == "completed", result["error"]
        assert all(sent["outbox"] is True for sent in result["output"])
        assert engine.store.outbox_status() == [
            {"broker": "events", "topic": case.topic, "pending": 2, "sent": 0, "last_error": None}
        ]
        if tap is None:
            assert case.read_all() == []  # nothing left the store yet
        Worker(engine).run(once=True)
        assert engine.store.outbox_status()[0]["pending"] == 0
        if tap is not None:
            deadline = time.monotonic() + 10
            while len(tap.messages) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            seen = tap.messages
        else:
            seen = [(row["message_id"], row["message"]) for row in case.read_all()]
    finally:
        if tap is not None:
            tap.close()
    assert seen == [(sent["message_id"], {"n": n}) for n, sent in enumerate(result["output"])]


OUTBOX_STEPS = """
from ductape_cli import workflow

attempts = {"n": 0}

async def send_then_fail_once(ctx):
    await ctx.messaging.produce(event="events:t", message={"from": "retried"})
    attempts["n"] += 1
    if attempts["n"] == 1:
        raise RuntimeError("first attempt fails after producing")
    return "ok"

async def send_then_fail(ctx):
    await ctx.messaging.produce(event="events:t", message={"from": "failed"})
    raise RuntimeError("always fails")

@workflow("steps")
async def steps(ctx):
    await ctx.step("retried", lambda: send_then_fail_once(ctx), retries=1)
    await ctx.step("failed", lambda: send_then_fail(ctx), allow_fail=True)
    return "done"
"""


def test_outbox_keeps_messages_of_completed_steps_only(make: Any) -> None:
    engine = make('[brokers.events]\ntopics = ["t"]\noutbox = true\n', OUTBOX_STEPS, name="steps")
    result = engine.run("steps", {})
    assert result["status"] == "completed", result["error"]
    claimed = engine.store.claim_outbox("test", time.time(), 60)
    # The retried step produced twice with one id (the id is the run, the step and the message): one row.
    assert [(m.step, m.message) for m in claimed] == [("retried", {"from": "retried"})]
    assert claimed[0].message_id.startswith(f"{result['workflow_id']}:retried:")
    assert engine.store.read_messages("events", "t") == []


def test_outbox_rows_are_written_in_the_step_transaction(tmp_path: Any) -> None:
    """A step row the store refuses (another owner took the position) takes its messages with it."""
    from ductape_cli.errors import StepTaken
    from ductape_cli.models import OpKind, StepRecord, StepStatus
    from ductape_cli.store import open_store
    from ductape_cli.store.sqlite_outbox import OutboxMessage

    store = open_store(str(tmp_path / "state.db"))
    record = StepRecord("wf_1", 0, OpKind.STEP, "send", StepStatus.COMPLETED)
    store.commit_step(
        record,
        [],
        outbox=[OutboxMessage("wf_1:send", "events", "t", {"n": 1}, "wf_1", "send", 1.0)],
    )
    with pytest.raises(StepTaken):
        store.commit_step(
            record,
            [],
            outbox=[OutboxMessage("wf_1:other", "events", "t", {"n": 2}, "wf_1", "send", 2.0)],
        )
    assert [m.message_id for m in store.claim_outbox("test", 10.0, 60)] == ["wf_1:send"]
    assert store.claim_outbox("another", 11.0, 60) == []  # leased to "test" for 60 s
    store.outbox_failed("wf_1:send", "ConnectionError: down", retry_at=20.0)
    assert store.claim_outbox("another", 15.0, 60) == []
    assert [m.attempts for m in store.claim_outbox("another", 21.0, 60)] == [1]
    store.outbox_sent(["wf_1:send"], 22.0)
    assert store.claim_outbox("another", 1e9, 60) == []
    store.close()


def test_topics_list_and_tail_on_every_broker(case: BrokerCase, runtime: Any) -> None:
    runtime(case.toml())
    if case.kind != "mqtt":
        case.publish([(f"id-{n}", {"n": n}) for n in range(3)])
    listed = _cli(["topics", "list", "--json"])
    assert listed.exit_code == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["broker"], row["type"], row["topic"]) == ("events", case.kind, case.topic)
    if case.kind == "mqtt":
        # MQTT keeps no log: tail shows what is published while it listens.
        publisher = threading.Timer(0.5, case.publish, args=([("id-0", {"n": 0})],))
        publisher.start()
        tail = _cli(["topics", "tail", f"events:{case.topic}", "--json"])
        publisher.join()
        assert [(m["message_id"], m["message"]) for m in json.loads(tail.stdout)] == [
            ("id-0", {"n": 0})
        ]
        return
    assert row["messages"] == 3
    tail = _cli(["topics", "tail", f"events:{case.topic}", "--json"])
    assert tail.exit_code == 0, tail.stderr
    rows = json.loads(tail.stdout)
    assert [(m["message_id"], m["message"]) for m in rows] == [
        (f"id-{n}", {"n": n}) for n in range(3)
    ]
    start = str(rows[1]["position"])
    later = json.loads(
        _cli(["topics", "tail", f"events:{case.topic}", "--from", start, "--json"]).stdout
    )
    assert [m["message_id"] for m in later] == ["id-1", "id-2"]
    assert case.read_all() == rows or case.kind == "rabbitmq"  # tail consumed nothing
    assert len(case.read_all()) == 3
    plain = _cli(["topics", "tail", f"events:{case.topic}"])
    assert plain.stdout.count("\n") == 3 and 'id-2  {"n": 2}' in plain.stdout
    assert _cli(["topics", "tail", "events:undeclared"]).exit_code == 2


@pytest.mark.slow  # seconds of waiting for MQTT redeliveries
def test_mqtt_trigger_dedupes_by_message_id_across_a_persistent_session(make: Any) -> None:
    """What MQTT triggers promise: queued while down, one run per id (user property or payload "id")."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    case = broker_case("mqtt")
    case.consumers.append(f"{case.group}-consumer")
    try:
        engine = make(case.toml(), CONSUMER.format(topic=case.topic), name="consumer")

        def publish(body: dict[str, Any], message_id: str | None = None) -> None:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            client.connect("127.0.0.1", 1883)
            client.loop_start()
            properties = Properties(PacketTypes.PUBLISH)
            if message_id:
                properties.UserProperty = [("Ductape-Message-Id", message_id)]
            client.publish(
                case.topic, json.dumps(body), qos=1, properties=properties
            ).wait_for_publish(10)
            client.disconnect()
            client.loop_stop()

        publish(
            {"id": "early", "n": 0}
        )  # before the trigger's first subscription: MQTT keeps nothing
        worker = Background(engine)
        try:
            worker.wait(
                lambda: any(line.startswith("⇢ listening") for line in worker.lines),
                "the trigger to subscribe",
            )
        finally:
            worker.close()  # a clean disconnect keeps the session and its queue on the broker
        for _ in range(2):
            publish({"id": "p-1", "n": 1})
            publish({"n": 2}, message_id="u-2")
        publish({"n": 3})
        worker = Background(engine)
        try:
            worker.wait(lambda: len(_completed(engine, "consumer")) >= 3, "three runs")
            time.sleep(1)  # the duplicates were queued too: give them time to arrive and be dropped
        finally:
            worker.close()
        runs = sorted(_completed(engine, "consumer"), key=lambda r: r.input["n"])
        assert [(r.input["n"], r.context["message"]["message_id"]) for r in runs] == [
            (1, "p-1"),
            (2, "u-2"),
            (3, None),
        ]
    finally:
        case.cleanup()


def test_worker_with_a_bad_trigger_is_one_line_and_exit_2(make: Any, cli: Any) -> None:
    make(
        '[brokers.events]\ntopics = ["t"]\n\n[triggers.consumer]\non_message = "events:missing"\n',
        "from ductape_cli import workflow\n\n@workflow('consumer')\ndef consumer(ctx):\n    return 1\n",
    )
    result = cli("worker", "--once")
    assert result.exit_code == 0  # --once starts no triggers
    result = cli("worker")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(
        "[triggers.consumer] on_message 'events:missing': topic 'missing' is not in [brokers.events] topics (t)"
    )
    assert "Traceback" not in result.stderr


UNREACHABLE = (
    '[brokers.events]\ntype = "redis"\nurl = "redis://127.0.0.1:{port}/0"\ntopics = ["t"]\n'
)


def test_an_unreachable_broker_is_reported_and_retried_while_the_worker_keeps_working(
    make: Any, unused_port: int
) -> None:
    engine = make(
        UNREACHABLE.format(port=unused_port) + "outbox = true\n",
        "from ductape_cli import workflow\n\n"
        "@workflow('consumer', on_message='events:t')\ndef consumer(ctx):\n    return 1\n\n"
        "@workflow('producer')\nasync def producer(ctx):\n    return await ctx.messaging.produce(event='events:t', message={'n': 1})\n",
    )
    result = engine.run("producer", {})
    assert result["status"] == "completed", result["error"]  # the step only wrote the outbox row
    worker = Background(engine)
    try:
        worker.wait(
            lambda: any(line.startswith("✗ trigger events:t → consumer") for line in worker.lines),
            "the trigger's failure",
        )
        worker.wait(
            lambda: engine.store.outbox_status()[0]["last_error"] is not None, "a failed send"
        )
        detached = engine.start("producer", {}, detach=True)[0]
        worker.wait(
            lambda: engine.get_run(detached.id).status == "completed", "other work to go on"
        )
    finally:
        worker.close()
    (status,) = engine.store.outbox_status()
    assert (
        status["pending"] == 2 and status["sent"] == 0 and "ConnectionError" in status["last_error"]
    )
    listed = _cli(["topics", "list", "--json"])
    (row,) = json.loads(listed.stdout)
    assert (
        row["messages"] is None
        and row["detail"].startswith("unreachable:")
        and row["outbox_pending"] == 2
    )


def test_worker_workflow_filter_limits_the_triggers_it_consumes(make: Any) -> None:
    from ductape_cli.engine import triggers

    engine = make(
        '[brokers.events]\ntopics = ["t"]\n',
        "from ductape_cli import workflow\n\n@workflow('consumer', on_message='events:t')\ndef consumer(ctx):\n    return 1\n",
    )
    for tags, expected in ((["other"], []), (["consumer"], ["consumer"]), (None, ["consumer"])):
        background = triggers.Background(engine, lambda line: None, tags)
        background.start()
        try:
            assert [c.trigger.workflow for c in background.consumers] == expected
        finally:
            background.stop()


def test_dev_reports_a_bad_trigger_instead_of_starting_the_worker(make: Any) -> None:
    from ductape_cli.engine.devloop import DevLoop

    engine = make(
        '[brokers.events]\ntopics = ["t"]\n',
        "from ductape_cli import workflow\n\n@workflow('consumer', on_message='events:nope')\ndef consumer(ctx):\n    return 1\n",
    )
    lines: list[str] = []
    loop = DevLoop(engine.config.root, report=lines.append, show=lambda report: None)
    try:
        assert loop.reload() is False
    finally:
        loop.stop_worker()
    assert loop.worker is None
    assert any(
        "on_message 'events:nope': topic 'nope' is not in [brokers.events] topics (t); fix it"
        in line
        for line in lines
    ), lines


def test_a_message_the_workflow_refuses_is_logged_and_dropped(
    make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make(
        '[brokers.events]\ntopics = ["t"]\n',
        "from pydantic import BaseModel\nfrom ductape_cli import workflow\n\n"
        "class Order(BaseModel):\n    order_id: int\n\n"
        "@workflow('consumer', on_message='events:t', input_model=Order)\ndef consumer(ctx):\n    return ctx.input['order_id']\n",
    )
    import asyncio

    from ductape_cli.components import ComponentRuntime

    direct = ComponentRuntime(engine.config)
    asyncio.run(direct.messaging.produce(event="events:t", message={"nonsense": True}))
    asyncio.run(direct.messaging.produce(event="events:t", message={"order_id": 7}))
    worker = Background(engine)
    try:
        worker.wait(lambda: len(_completed(engine, "consumer")) == 1, "the valid message's run")
    finally:
        worker.close()
    assert [r.output for r in _completed(engine, "consumer")] == [7]
    assert any(
        "refused: invalid input for consumer: order_id: Field required" in line
        for line in worker.lines
    ), worker.lines
    assert "refused, dropped" in caplog.text
    assert engine.store.consumer_offset("ductape-components-test-consumer", "events", "t") == 2


def test_an_engine_closes_while_another_thread_still_imports_the_brokers(
    project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve` may close its API engine while the worker's first produce step imports the brokers
    module: a module without `close_clients` yet has no client to close, and the rest still closes."""
    import sys
    import types

    engine = project.engine()
    engine.store.count_runs()  # this thread's store is open
    assert engine._opened
    half_imported = types.ModuleType("ductape_cli.components.brokers")
    monkeypatch.setitem(sys.modules, "ductape_cli.components.brokers", half_imported)
    engine.close()
    assert engine._opened == []
