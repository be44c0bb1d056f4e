"""OpenTelemetry traces: each run is a trace; each execution, step, wait, compensation and child run a span.

Enabled when the `otel` extra is installed and the environment configures an
exporter (`OTEL_TRACES_EXPORTER`, or any `OTEL_EXPORTER_*` variable); code
may also call `enable(engine, provider)` (the tests use the SDK's in-memory
exporter). The OpenTelemetry packages are imported only then.

Shape of a trace. Creating a run opens its `run TAG` span; its context is
stored in the run's options (`traceparent`), so every later execution — in
this process or another, after a crash or a day-long wait — joins the same
trace as an `execute TAG` span. Steps, compensations and child runs are
spans inside the execution that ran them; a wait becomes a span when it ends,
reaching back to when it began. A child run's `run` span hangs under the
parent's `child TAG` span, and `ctx.action` calls made inside a step carry
that step's context as the `traceparent` header.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine
    from ductape_cli.engine.journal import RunView

logger = logging.getLogger("ductape.tracing")

# The span a `ctx.action` call made right now should carry as its parent (a step's, usually).
CURRENT: ContextVar[Any] = ContextVar("ductape_current_span", default=None)
_PROVIDER_LOCK = threading.Lock()
_ENV_PROVIDER: Any = None


def configured(environ: Any = None) -> bool:
    """Whether OTEL_* variables ask for traces to be exported."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER")
    if exporter is not None:
        return exporter.strip().lower() not in ("", "none")
    return any(key.startswith("OTEL_EXPORTER_") for key in env)


def inject(headers: dict[str, str]) -> None:
    """Add `traceparent` (and the configured propagators' other headers) for the current step's span."""
    span = CURRENT.get()
    if span is None:
        return
    from opentelemetry import propagate, trace

    propagate.inject(headers, context=trace.set_span_in_context(span))


@contextmanager
def parent_from(headers: Mapping[str, str]) -> Iterator[None]:
    """Runs created inside this block join the trace `headers` carry (a server passes the request's headers).

    A no-op without the otel extra or without a valid `traceparent`.
    """
    try:
        from opentelemetry import propagate, trace
    except ImportError:
        yield
        return
    span = trace.get_current_span(propagate.extract(dict(headers)))
    if not span.get_span_context().is_valid:
        yield
        return
    token = CURRENT.set(span)
    try:
        yield
    finally:
        CURRENT.reset(token)


def enable(engine: Engine, provider: Any = None) -> Tracer:
    """Trace `engine`'s runs with `provider` (default: the global tracer provider)."""
    tracer = Tracer(provider)
    engine.listeners.append(tracer)
    return tracer


def enable_from_environment(engine: Engine) -> None:
    """Set up an SDK tracer provider from OTEL_* variables (once per process) and trace `engine`."""
    try:
        provider = _environment_provider()
    except ImportError:
        engine.notices.append(
            "OTEL_* is set but the otel extra is not installed (pip install 'ductape[otel]'); not tracing"
        )
        return
    except ValueError as exc:
        engine.notices.append(f"not tracing: {exc}")
        return
    enable(engine, provider)


def _environment_provider() -> Any:
    global _ENV_PROVIDER
    with _PROVIDER_LOCK:
        if _ENV_PROVIDER is not None:
            return _ENV_PROVIDER
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):  # the application configured one: use it
            _ENV_PROVIDER = current
            return current
        attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "ductape"}
        provider = TracerProvider(resource=Resource.create(attributes))
        names = os.environ.get("OTEL_TRACES_EXPORTER") or "otlp"
        for name in (n.strip().lower() for n in names.split(",")):
            if name and name != "none":
                provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
        trace.set_tracer_provider(provider)
        _ENV_PROVIDER = provider
        return provider


def _exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stderr)  # stdout belongs to --json
    if name == "otlp":
        grpc = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf").startswith("grpc")
        try:
            if grpc:
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
            else:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ValueError(
                "the OTLP exporter is not installed (pip install opentelemetry-exporter-otlp)"
            ) from None
        return OTLPSpanExporter()
    raise ValueError(f"unknown OTEL_TRACES_EXPORTER {name!r} (ductape knows otlp, console, none)")


@dataclass
class _Segment:
    """The open spans of one execution."""

    span: Any
    steps: dict[str, Any] = field(default_factory=dict)
    children: dict[str, Any] = field(default_factory=dict)
    compensations: dict[str, Any] = field(default_factory=dict)


class Tracer:
    """An engine listener that turns lifecycle events into spans."""

    def __init__(self, provider: Any = None) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        self._trace = trace
        self._status, self._codes = Status, StatusCode
        self.provider = provider
        source = provider or trace.get_tracer_provider()
        self.tracer = source.get_tracer("ductape")
        self._segments: dict[int, _Segment] = {}
        self._runs: dict[
            str, Any
        ] = {}  # run id -> its `run` span, while this process holds it open
        self._lock = threading.Lock()

    def __call__(self, view: RunView | None, kind: str, data: dict[str, Any]) -> None:
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(view, data)

    def close(self) -> None:
        with self._lock:
            spans = list(self._runs.values())
            self._runs.clear()
        for span in spans:
            span.end()
        flush = getattr(self.provider, "force_flush", None)
        if flush is not None:
            flush()

    # -- runs and executions ---------------------------------------------------------------

    def _on_run_created(self, _: Any, data: dict[str, Any]) -> None:
        from opentelemetry import propagate

        run = data["run"]
        parent = (
            CURRENT.get()
        )  # a child's parent span, or a server request's remote parent (`parent_from`)
        if parent is not None:
            context = self._trace.set_span_in_context(parent)
        elif os.environ.get(
            "TRACEPARENT"
        ):  # a CI job's own trace, as otel-cli and others hand it down
            context = propagate.extract({"traceparent": os.environ["TRACEPARENT"]})
        else:
            context = None
        span = self.tracer.start_span(
            f"run {run.tag}", context=context, attributes=_run_attributes(run)
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=self._trace.set_span_in_context(span))
        run.options = {
            **(run.options or {}),
            **{k: v for k, v in carrier.items() if k in ("traceparent", "tracestate")},
        }
        if run.status == "pending":  # queued for a worker: the run span marks its creation
            span.set_attribute("ductape.queued", True)
            span.end()
            return
        with self._lock:
            self._runs[run.id] = span

    def _on_run_discarded(self, _: Any, data: dict[str, Any]) -> None:
        """The run was never stored (a taken id, or an idempotency key naming another run)."""
        with self._lock:
            span = self._runs.pop(data["run"].id, None)
        if span is not None:
            span.set_attribute("ductape.discarded", True)
            span.end()

    def _on_execution_started(self, view: RunView, data: dict[str, Any]) -> None:
        from opentelemetry import propagate

        with self._lock:
            run_span = self._runs.get(view.run_id)
        if run_span is not None:
            context = self._trace.set_span_in_context(run_span)
        else:
            context = propagate.extract(view.trace_context)
        attributes = {
            **_attributes(view.run_id, view.tag, view.parent_id),
            "ductape.first_execution": bool(data.get("first")),
        }
        if view.taken_from:
            attributes["ductape.taken_from"] = view.taken_from
        span = self.tracer.start_span(f"execute {view.tag}", context=context, attributes=attributes)
        with self._lock:
            self._segments[id(view)] = _Segment(span)
        CURRENT.set(span)

    def _on_execution_ended(self, view: RunView, data: dict[str, Any]) -> None:
        with self._lock:
            segment = self._segments.pop(id(view), None)
            run_span = self._runs.pop(view.run_id, None)
        if segment is None:
            return
        for span in [
            *segment.steps.values(),
            *segment.children.values(),
            *segment.compensations.values(),
        ]:
            span.set_attribute("ductape.interrupted", True)
            span.end()
        outcome = data.get("outcome")
        status = str(outcome.status) if outcome is not None else "interrupted"
        segment.span.set_attribute("ductape.status", status)
        if outcome is not None and outcome.waiting:
            segment.span.set_attribute("ductape.waiting", str(outcome.waiting.get("kind")))
        segment.span.end()
        if run_span is not None:
            run_span.set_attribute("ductape.status", status)
            if outcome is not None and outcome.error:
                run_span.set_status(
                    self._status(self._codes.ERROR, str(outcome.error.get("message")))
                )
            run_span.end()
        CURRENT.set(None)

    def _on_finished(self, view: RunView, data: dict[str, Any]) -> None:
        segment = self._segment(view)
        if segment is None:
            return
        segment.span.set_attribute("ductape.status", str(data.get("status")))
        error = data.get("error")
        if error and data.get("status") != "completed":
            segment.span.set_status(self._status(self._codes.ERROR, str(error.get("message"))))

    # -- steps ---------------------------------------------------------------------------

    def _on_step_started(self, view: RunView, data: dict[str, Any]) -> None:
        segment = self._segment(view)
        if segment is None:
            return
        span = self._child(segment, f"step {data['tag']}", {"ductape.step": data["tag"]})
        segment.steps[data["tag"]] = span
        CURRENT.set(span)

    def _on_step_retried(self, view: RunView, data: dict[str, Any]) -> None:
        segment = self._segment(view)
        span = segment.steps.get(data["tag"]) if segment else None
        if span is not None:
            message = str((data.get("error") or {}).get("message"))
            span.add_event(
                "retry",
                {"ductape.attempt": int(data.get("attempt") or 0), "ductape.error": message},
            )

    def _on_step_completed(self, view: RunView, data: dict[str, Any]) -> None:
        self._end(view, "steps", data["tag"], None)

    def _on_step_failed(self, view: RunView, data: dict[str, Any]) -> None:
        message = str((data.get("error") or {}).get("message"))
        self._end(
            view,
            "steps",
            data["tag"],
            None if data.get("allow_fail") else message,
            {"ductape.allow_fail": bool(data.get("allow_fail"))},
        )

    def _on_step_skipped(self, view: RunView, data: dict[str, Any]) -> None:
        segment = self._segment(view)
        if segment is not None:
            attributes = {
                "ductape.step": data["tag"],
                "ductape.skipped": True,
                "ductape.condition": str(data.get("condition")),
            }
            self._child(segment, f"step {data['tag']}", attributes).end()

    # -- compensations, children, waits ----------------------------------------------------

    def _on_step_rollback_started(self, view: RunView, data: dict[str, Any]) -> None:
        segment = self._segment(view)
        if segment is None:
            return
        span = self._child(segment, f"compensate {data['tag']}", {"ductape.step": data["tag"]})
        segment.compensations[data["tag"]] = span
        CURRENT.set(span)

    def _on_step_rolled_back(self, view: RunView, data: dict[str, Any]) -> None:
        self._end(view, "compensations", data["tag"], None)

    def _on_step_rollback_failed(self, view: RunView, data: dict[str, Any]) -> None:
        self._end(view, "compensations", data["tag"], str(data.get("error")))

    def _on_child_started(self, view: RunView, data: dict[str, Any]) -> None:
        segment = self._segment(view)
        if segment is None:
            return
        span = self._child(
            segment,
            f"child {data['tag']}",
            {"ductape.child_id": data["child_id"], "ductape.workflow": data["tag"]},
        )
        segment.children[data["child_id"]] = span
        CURRENT.set(span)  # the child run created next takes this span as its parent

    def _on_child_ended(self, view: RunView, data: dict[str, Any]) -> None:
        segment = self._segment(view)
        if segment is None:
            return
        span = segment.children.pop(data["child_id"], None)
        if span is None:  # the child ended while this run was suspended: a span for the whole wait
            start = _ns(data.get("started_at"))
            attributes = {"ductape.child_id": data["child_id"], "ductape.workflow": data["tag"]}
            span = self._child(segment, f"child {data['tag']}", attributes, start_time=start)
        span.set_attribute("ductape.status", str(data.get("status")))
        if data.get("status") != "completed":
            span.set_status(
                self._status(self._codes.ERROR, f"child {data['child_id']} {data.get('status')}")
            )
        span.end()
        CURRENT.set(segment.span)

    def _on_wait_ended(self, view: RunView, data: dict[str, Any]) -> None:
        segment = self._segment(view)
        if segment is None:
            return
        attributes: dict[str, Any] = {
            "ductape.wait": str(data.get("wait")),
            "ductape.tag": str(data.get("tag")),
        }
        if data.get("timed_out"):
            attributes["ductape.timed_out"] = True
        span = self._child(
            segment,
            f"wait {data.get('wait')} {data.get('tag')}",
            attributes,
            start_time=_ns(data.get("started_at")),
        )
        span.end(end_time=_ns(view.clock.now()))

    # -- plumbing ----------------------------------------------------------------------------

    def _segment(self, view: RunView | None) -> _Segment | None:
        if view is None:
            return None
        with self._lock:
            return self._segments.get(id(view))

    def _child(
        self,
        segment: _Segment,
        name: str,
        attributes: dict[str, Any],
        start_time: int | None = None,
    ) -> Any:
        context = self._trace.set_span_in_context(segment.span)
        return self.tracer.start_span(
            name, context=context, attributes=attributes, start_time=start_time
        )

    def _end(
        self,
        view: RunView,
        group: str,
        tag: str,
        error: str | None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        segment = self._segment(view)
        if segment is None:
            return
        span = getattr(segment, group).pop(tag, None)
        if span is None:
            return
        for key, value in (attributes or {}).items():
            span.set_attribute(key, value)
        if error is not None:
            span.set_status(self._status(self._codes.ERROR, error))
        span.end()
        CURRENT.set(segment.span)


def _run_attributes(run: Any) -> dict[str, Any]:
    return _attributes(run.id, run.tag, run.parent_id)


def _attributes(run_id: str, tag: str, parent_id: str | None) -> dict[str, Any]:
    attributes = {"ductape.run_id": run_id, "ductape.workflow": tag}
    if parent_id:
        attributes["ductape.parent_id"] = parent_id
    return attributes


def _ns(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1_000_000_000)
