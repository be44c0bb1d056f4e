"""Prometheus metrics: runs started and ended, step durations, retries, compensations, lease takeovers,
and the queue as the store sees it at scrape time.

`Metrics(engine)` hooks into the engine's listener seam and owns a registry;
`serve(engine, port)` exposes it over HTTP (`ductape worker --metrics-port`),
and `asgi_app(engine)` gives an ASGI app to mount under `/metrics` (for
`ductape serve`). prometheus-client is imported only here, only when asked.

Counters count what this process executed; the queue gauges are read from
the store on each scrape, so every process reports the same queue.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ductape_cli.errors import InvalidInput
from ductape_cli.models import EventType, Lifecycle

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine
    from ductape_cli.engine.journal import RunView

logger = logging.getLogger("ductape.metrics")

STEP_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)


class Metrics:
    """An engine listener that counts lifecycle events into its own Prometheus registry."""

    def __init__(self, engine: Engine, registry: Any = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.engine = engine
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.runs_started = Counter(
            "ductape_runs_started",
            "Runs whose first execution began in this process.",
            ["workflow"],
            registry=r,
        )
        self.runs_ended = Counter(
            "ductape_runs_ended",
            "Runs that ended in this process, by end status.",
            ["workflow", "status"],
            registry=r,
        )
        self.step_seconds = Histogram(
            "ductape_step_duration_seconds",
            "Duration of executed steps (all attempts).",
            ["workflow", "status"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            "ductape_step_retries",
            "Step attempts that failed and were retried.",
            ["workflow"],
            registry=r,
        )
        self.compensations = Counter(
            "ductape_compensations",
            "Compensations (rollback handlers) run, by outcome.",
            ["workflow", "status"],
            registry=r,
        )
        self.takeovers = Counter(
            "ductape_lease_takeovers",
            "Runs this process claimed from another owner's lease (crash recovery).",
            ["workflow"],
            registry=r,
        )
        r.register(_QueueCollector(engine))

    def __call__(self, view: RunView | None, kind: str, data: dict[str, Any]) -> None:
        if view is None:
            return
        tag = view.tag
        if kind == Lifecycle.EXECUTION_STARTED:
            if data.get("first"):
                self.runs_started.labels(tag).inc()
            if view.taken_from:
                self.takeovers.labels(tag).inc()
        elif kind == Lifecycle.FINISHED:
            self.runs_ended.labels(tag, str(data.get("status"))).inc()
        elif kind == EventType.STEP_COMPLETED:
            self.step_seconds.labels(tag, "completed").observe(
                (data.get("duration_ms") or 0) / 1000
            )
        elif kind == EventType.STEP_FAILED:
            self.step_seconds.labels(tag, "failed").observe(
                view.clock.now() - _started(view, data["tag"])
            )
        elif kind == EventType.STEP_RETRIED:
            self.retries.labels(tag).inc()
        elif kind == EventType.STEP_ROLLED_BACK:
            self.compensations.labels(tag, "completed").inc()
        elif kind == EventType.STEP_ROLLBACK_FAILED:
            self.compensations.labels(tag, "failed").inc()

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def _started(view: RunView, tag: str) -> float:
    """When a failed step started: its journal row has it (the row is committed before `step_failed`)."""
    record = view.step_record(tag)
    if record is not None and record.started_at is not None:
        return record.started_at
    return view.clock.now()


class _QueueCollector:
    """Gauges read from the store at scrape time: the queue, executing and waiting runs, and the oldest of each."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Any]:
        return []  # collected lazily: registering must not read the store

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        engine = self.engine
        if not engine.has_store():
            return
        store = (
            engine.open_store()
        )  # scrapes come on short-lived threads: a connection of their own
        try:
            stats = store.queue_stats(engine.clock.now())
        except Exception:  # noqa: BLE001 - a scrape must answer even when the store is busy
            logger.exception("reading queue figures from %s failed", engine.store_path)
            return
        finally:
            if engine.store_path != ":memory:":  # the in-memory store is one shared connection
                store.close()
        runs = GaugeMetricFamily("ductape_runs", "Unfinished runs by state.", labels=["state"])
        for state in ("queued", "executing", "waiting"):
            runs.add_metric([state], stats[state])
        yield runs
        yield GaugeMetricFamily(
            "ductape_queue_depth",
            "Runs due now that no live owner holds (queued, woken, orphaned).",
            value=stats["queued"],
        )
        yield GaugeMetricFamily(
            "ductape_oldest_queued_run_seconds",
            "How long the longest-due unclaimed run has waited for a worker.",
            value=stats["oldest_queued_seconds"],
        )
        yield GaugeMetricFamily(
            "ductape_oldest_waiting_run_seconds",
            "Age of the oldest run suspended on a signal, timer or child.",
            value=stats["oldest_waiting_seconds"],
        )


def enable(engine: Engine) -> Metrics:
    """Count `engine`'s lifecycle events (idempotent: one Metrics per engine)."""
    for listener in engine.listeners:
        if isinstance(listener, Metrics):
            return listener
    metrics = Metrics(engine)
    engine.listeners.append(metrics)
    return metrics


def serve(engine: Engine, port: int, host: str = "127.0.0.1") -> tuple[Metrics, Any]:
    """Expose `engine`'s metrics at http://host:port/metrics on a background thread; returns (metrics, server)."""
    try:
        from prometheus_client import start_http_server
    except ImportError:
        raise InvalidInput(
            "--metrics-port needs prometheus-client: pip install 'ductape[metrics]'"
        ) from None
    metrics = enable(engine)
    try:
        server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise InvalidInput(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
        ) from None
    return metrics, server


def asgi_app(engine: Engine) -> Any:
    """An ASGI app answering Prometheus scrapes for `engine` (mount it at /metrics)."""
    from prometheus_client import make_asgi_app

    return make_asgi_app(registry=enable(engine).registry)
