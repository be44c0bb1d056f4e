"""The ASGI app of `ductape serve`: the VSKI REST table and the frontend SDK's operations.

Thin like the CLI: each route parses its request, calls one public engine
method, and shapes the answer (`views`). Errors are `{error: {code, message}}`
with 400 (bad input, nothing written), 401 (no or wrong token), 404 (unknown
run, workflow or hook), 409 (state or idempotency conflict), 413 (body too
large), 422 (a body that does not fit its schema) and 429 (too many
subscriptions); never a traceback. Live updates: `subscribe` routes, as
WebSocket and as Server-Sent Events (`stream`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from ductape_cli.errors import (
    Conflict,
    DuctapeError,
    HookNotFound,
    InvalidInput,
    InvalidState,
    RunNotFound,
    ScheduleNotFound,
    StoreError,
    WorkflowNotFound,
)
from ductape_cli.server import dashboard, schedules, schemas, views
from ductape_cli.server.stream import Hub, Lagging, TooManySubscriptions

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine
    from ductape_cli.server.settings import ServeSettings

log = logging.getLogger("ductape.server")
WEB = Path(__file__).resolve().parent.parent / "web"
HEARTBEAT_SECONDS = 15.0

_STATUS_BY_ERROR: list[tuple[type[DuctapeError], int]] = [
    (Conflict, 409),
    (InvalidState, 409),
    (RunNotFound, 404),
    (WorkflowNotFound, 404),
    (HookNotFound, 404),
    (ScheduleNotFound, 404),
    (TooManySubscriptions, 429),
    (StoreError, 503),
    (InvalidInput, 400),
]


class Unauthorized(DuctapeError):
    code = "UNAUTHORIZED"


def http_status(exc: DuctapeError) -> int:
    if isinstance(exc, Unauthorized):
        return 401
    return next((status for cls, status in _STATUS_BY_ERROR if isinstance(exc, cls)), 400)


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def create_app(
    engine: Engine,
    settings: ServeSettings,
    *,
    wake: Callable[[], None] | None = None,
    metrics: Any = None,
) -> FastAPI:
    """The app over `engine`; `wake` tells an in-process worker that a run was queued.

    `metrics`, when given, is the `observe.metrics.Metrics` served at `/metrics` (behind the token).
    """
    hub = Hub(
        engine,
        max_subscriptions=settings.max_subscriptions,
        queue_limit=settings.queue_limit,
        poll_interval=settings.poll_interval,
    )
    notify = wake or (lambda: None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub.start()
        try:
            yield
        finally:
            await asyncio.to_thread(hub.stop)

    app = FastAPI(
        title="ductape",
        summary="Durable workflows over HTTP: start, inspect, signal, cancel and subscribe to runs.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.hub = hub
    install_error_handlers(app)

    def authorize(request: Request) -> None:
        check_token(settings.token, request.headers.get("authorization"), None)

    def authorize_stream(request: Request) -> None:
        check_token(
            settings.token, request.headers.get("authorization"), request.query_params.get("token")
        )

    api = APIRouter(prefix="/api/workflows", dependencies=[Depends(authorize)])
    streams = APIRouter(prefix="/api/workflows", dependencies=[Depends(authorize_stream)])

    # -- runs -------------------------------------------------------------------------

    @api.post("/runs", status_code=201, summary="Start a run (it executes on a worker)")
    def start_run(body: schemas.StartRun) -> JSONResponse:
        o = body.options
        run, created = engine.submit(
            body.workflow,
            body.input,
            timeout=o.timeout,
            retries=o.retries,
            metadata=o.metadata,
            workflow_id=o.workflow_id,
            idempotency_key=o.idempotency_key,
            env=o.env,
        )
        if created:
            notify()
        content = {
            "executionId": run.id,
            "workflow": run.tag,
            "status": str(run.status),
            "created": created,
        }
        return JSONResponse(content, status_code=201 if created else 200)

    @api.get("/runs", summary="List runs, newest first")
    def list_runs(
        workflow: str | None = None,
        status: str | None = None,
        limit: int = Query(20, ge=1, le=1000),
        offset: int = Query(0, ge=0),
        search: str | None = Query(
            None, max_length=200, description="text in the run id, input or metadata"
        ),
    ) -> dict[str, Any]:
        check_status(status)
        runs = engine.list_runs(
            tag=workflow, status=status, search=search, limit=limit, offset=offset
        )
        return {
            "count": engine.count_runs(tag=workflow, status=status, search=search),
            "executions": [views.summary(r) for r in runs],
        }

    @api.get("/runs/{run_id}", summary="A run: status, result, error, steps")
    def get_run(run_id: str) -> dict[str, Any]:
        return views.execution(engine.status(run_id))

    @api.patch("/runs/{run_id}", summary="Update a run: metadata, and/or a signal, and/or cancel")
    def update_run(run_id: str, body: schemas.UpdateRun) -> dict[str, Any]:
        if body.metadata is None and body.signal is None and body.cancel is None:
            raise InvalidInput("nothing to update: give metadata, signal or cancel")
        run = engine.get_run(run_id)
        if body.metadata is not None:
            engine.set_metadata(run.id, body.metadata)
        if body.signal is not None:
            engine.signal(run.id, body.signal.name, body.signal.data, continue_inline=False)
            notify()
        if body.cancel is not None:
            engine.cancel(run.id, body.cancel.reason, wait_seconds=2.0)
        return views.execution(engine.status(run.id))

    @api.delete("/runs/{run_id}", summary="Cancel a run (its rollback strategy applies)")
    def cancel_run(
        run_id: str, reason: str = Query("cancelled", max_length=1000)
    ) -> dict[str, Any]:
        result = engine.cancel(run_id, reason, wait_seconds=2.0)
        return {
            **views.execution(result),
            "cancelled": result["cancelled"],
            "reason": reason,
            "rolledBackSteps": result["rolled_back_steps"],
        }

    @api.get("/runs/{run_id}/history", summary="Every event of a run, in time order")
    def history(run_id: str) -> dict[str, Any]:
        run = engine.get_run(run_id)
        return {"executionId": run.id, "events": engine.history(run.id)}

    @api.post("/runs/{run_id}/signals/{name}", summary="Send a signal to a waiting run")
    def signal(run_id: str, name: str, body: schemas.SignalBody | None = None) -> dict[str, Any]:
        result = engine.signal(run_id, name, body.data if body else None, continue_inline=False)
        notify()
        return views.execution(result)

    @api.get("/runs/{run_id}/children", summary="The child runs a run started")
    def children(run_id: str) -> dict[str, Any]:
        run = engine.get_run(run_id)
        found = engine.children(run.id)
        return {
            "executionId": run.id,
            "count": len(found),
            "executions": [views.summary(r) for r in found],
        }

    @api.get("/runs/{run_id}/parent", summary="The run that started this one (null when none)")
    def parent(run_id: str) -> dict[str, Any]:
        run = engine.get_run(run_id)
        found = engine.parent(run.id)
        return {"executionId": run.id, "parent": views.summary(found) if found else None}

    @api.get("/runs/{run_id}/events", summary="A run's custom events")
    def custom_events(run_id: str, type: str | None = None) -> dict[str, Any]:  # noqa: A002 - the API's word
        run = engine.get_run(run_id)
        return {"executionId": run.id, "events": engine.events(run.id, type)}

    @api.post("/events", status_code=201, summary="Record a custom event on a run")
    def emit_event(body: schemas.EmitEvent) -> dict[str, Any]:
        return engine.emit_event(body.execution_id, body.type, body.payload)

    @api.post("/hooks", summary="The open hooks a run created (ctx.create_hook), with their tokens")
    def hooks(body: schemas.HookLookup) -> dict[str, Any]:
        found = engine.open_hooks(body.execution_id, body.name)
        if not found:
            which = f" named {body.name!r}" if body.name else ""
            raise HookNotFound(f"run {body.execution_id} has no open hook{which}")
        return {"executionId": body.execution_id, "token": found[0]["token"], "hooks": found}

    @api.post("/hooks/{token}", summary="Call a hook: deliver its data to the waiting run")
    def call_hook(token: str, body: schemas.HookCall | None = None) -> dict[str, Any]:
        result = engine.deliver_hook(token, body.data if body else None, continue_inline=False)
        notify()
        return views.execution(result)

    # -- runs from runs, and families ---------------------------------------------------

    @api.post("/runs/{run_id}/replay", status_code=201, summary="A new run with the original input")
    def replay(run_id: str, body: schemas.Replay | None = None) -> dict[str, Any]:
        from ductape_cli.engine.lineage import replay as replay_run

        b = body or schemas.Replay()
        return views.execution(
            replay_run(
                engine,
                run_id,
                reason=b.reason,
                idempotency_key=b.idempotency_key,
                timeout=b.timeout,
                from_step=b.from_step,
                step_outputs=b.step_outputs,
            )
        )

    @api.post(
        "/runs/{run_id}/restart", status_code=201, summary="A new run with new or changed input"
    )
    def restart(run_id: str, body: schemas.Restart) -> dict[str, Any]:
        from ductape_cli.engine.lineage import restart as restart_run

        return views.execution(
            restart_run(
                engine,
                run_id,
                input=body.input,
                set_values=body.set,
                input_override=body.input_override,
                merge=body.merge,
                reason=body.reason,
                idempotency_key=body.idempotency_key,
                timeout=body.timeout,
            )
        )

    @api.post("/runs/{run_id}/resume", summary="Continue a run from its journal")
    def resume(run_id: str, body: schemas.Resume | None = None) -> dict[str, Any]:
        from ductape_cli.engine.lineage import resume_from

        b = body or schemas.Resume()
        return views.execution(
            resume_from(
                engine,
                run_id,
                from_checkpoint=b.from_checkpoint,
                from_step=b.from_step,
                skip=b.skip,
            )
        )

    @api.get(
        "/runs/{run_id}/related", summary="A run's family: replays, restarts, resumes, children"
    )
    def related(run_id: str) -> dict[str, Any]:
        from ductape_cli.engine.lineage import related as family

        return family(engine, run_id)

    @api.get("/runs/{run_id}/compare/{other_id}", summary="Compare two runs step by step")
    def compare(run_id: str, other_id: str) -> dict[str, Any]:
        from ductape_cli.engine.lineage import compare as compare_runs

        return compare_runs(engine, run_id, other_id)

    # -- definitions --------------------------------------------------------------------

    @api.get("", summary="Defined workflows with their run counts")
    def workflows() -> dict[str, Any]:
        rows = engine.workflows()
        return {"count": len(rows), "workflows": rows}

    @api.get("/{tag}", summary="One workflow definition: steps, conditions, options, versions")
    def definition(tag: str, version: str | None = None) -> dict[str, Any]:
        from ductape_cli.stored_definitions import show_definition

        return show_definition(engine, tag, version)

    # -- live updates ---------------------------------------------------------------------

    @streams.get(
        "/runs/{run_id}/subscribe", summary="A run's events as Server-Sent Events (or a WebSocket)"
    )
    async def run_events_sse(
        request: Request, run_id: str, since: int | None = Query(None, ge=0)
    ) -> StreamingResponse:
        run = await asyncio.to_thread(engine.get_run, run_id)
        return sse(request, hub, run_id=run.id, since=resume_point(request, since, default=0))

    @streams.get(
        "/{tag}/subscribe",
        summary="Events of every run of a workflow as Server-Sent Events (or a WebSocket)",
    )
    async def workflow_events_sse(
        request: Request, tag: str, since: int | None = Query(None, ge=0)
    ) -> StreamingResponse:
        await asyncio.to_thread(engine.definition, tag)
        return sse(request, hub, tag=tag, since=resume_point(request, since, default=None))

    @app.websocket("/api/workflows/runs/{run_id}/subscribe")
    async def run_events_ws(websocket: WebSocket, run_id: str) -> None:
        await websocket_stream(websocket, settings, hub, lambda: engine.get_run(run_id).id, None)

    @app.websocket("/api/workflows/{tag}/subscribe")
    async def workflow_events_ws(websocket: WebSocket, tag: str) -> None:
        await websocket_stream(websocket, settings, hub, None, lambda: engine.definition(tag).tag)

    app.include_router(streams)
    app.include_router(api)
    app.include_router(schedules.router(engine, authorize))
    dashboard.mount(app)

    @app.get("/api/openapi.json", include_in_schema=False, dependencies=[Depends(authorize)])
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/sdk.js", include_in_schema=False)
    def sdk() -> FileResponse:
        return FileResponse(WEB / "sdk.js", media_type="text/javascript; charset=utf-8")

    if metrics is not None:

        @app.get("/metrics", include_in_schema=False, dependencies=[Depends(authorize)])
        def scrape() -> Response:
            return Response(
                metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8"
            )

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, Any]:
        return {"ok": True, "subscriptions": hub.count}

    if settings.cors:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            max_age=600,
        )
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(AccessLog)
    return app


# -- auth, errors, limits ---------------------------------------------------------------


def check_token(expected: str | None, header: str | None, query_token: str | None) -> None:
    """Refuse a request without the bearer token (header, or `?token=` where allowed)."""
    if expected is None:
        return
    given = None
    if header and header.lower().startswith("bearer "):
        given = header[7:].strip()
    elif query_token:
        given = query_token
    if given is None:
        raise Unauthorized(
            "missing bearer token: send `Authorization: Bearer <token>` (see .ductape/serve.token)"
        )
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("wrong token")


def check_status(status: str | None) -> None:
    from ductape_cli.models import RunStatus

    if status is not None and status not in {s.value for s in RunStatus}:
        raise InvalidInput(
            f"unknown status {status!r} (use one of {', '.join(s.value for s in RunStatus)})"
        )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DuctapeError)
    async def ductape_error(request: Request, exc: DuctapeError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
        return JSONResponse(
            error_body(exc.code, exc.message), status_code=http_status(exc), headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"at": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"at": "", "message": "invalid request"}
        message = f"{first['at']}: {first['message']}" if first["at"] else first["message"]
        return JSONResponse(
            error_body("VALIDATION_ERROR", message, details=problems), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            error_body("INTERNAL", f"internal error ({type(exc).__name__}); see the server log"),
            status_code=500,
        )


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, counted as they arrive (no trust in headers).

    The body is read here, up to the limit, and handed on whole: the app never sees a partial one.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            error_body("BODY_TOO_LARGE", f"request body over {self.limit} bytes")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that returns `messages` first, then whatever the connection sends (a disconnect)."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


class AccessLog:
    """One log line per request: method, path without its query (a `?token=` is never logged), status, time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: list[int] = []

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            method = scope.get("method", "WS")
            took = (time.perf_counter() - started) * 1000
            log.info(
                "%s %s %s %.1fms", method, scope.get("path", ""), status[0] if status else "-", took
            )


# -- streams -----------------------------------------------------------------------------


def resume_point(request: Request, since: int | None, *, default: int | None) -> int | None:
    """Where a stream starts: `?since=`, else an EventSource's `Last-Event-ID` on reconnect, else `default`."""
    if since is not None:
        return since
    last = request.headers.get("last-event-id", "")
    return int(last) if last.isdigit() else default


def sse(
    request: Request,
    hub: Hub,
    *,
    run_id: str | None = None,
    tag: str | None = None,
    since: int | None,
) -> StreamingResponse:
    sub, live_from = hub.subscribe(run_id=run_id, tag=tag)

    async def frames() -> AsyncIterator[str]:
        events = hub.events(sub, since, live_from).__aiter__()
        try:
            yield ": subscribed\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(events.__anext__(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"id: {event['id']}\nevent: {event['type']}\ndata: {json.dumps(event, default=str)}\n\n"
        except Lagging as lag:
            yield f"event: error\ndata: {json.dumps(error_body('LAGGING', str(lag), since=lag.cursor))}\n\n"
        finally:
            hub.unsubscribe(sub)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)


async def websocket_stream(
    websocket: WebSocket,
    settings: ServeSettings,
    hub: Hub,
    run_of: Callable[[], str] | None,
    tag_of: Callable[[], str] | None,
) -> None:
    """One subscription over a WebSocket: JSON events out; the client's close ends it.

    The subscription is registered before the handshake completes, so a client that sees the
    socket open (and then starts a run) cannot miss that run's first events.
    """
    try:
        check_token(
            settings.token,
            websocket.headers.get("authorization"),
            websocket.query_params.get("token"),
        )
        run_id = await asyncio.to_thread(run_of) if run_of else None
        tag = await asyncio.to_thread(tag_of) if tag_of else None
        text = websocket.query_params.get("since")
        if text is not None and not text.isdigit():
            raise InvalidInput(f"since must be a feed cursor (a whole number), got {text!r}")
        since = int(text) if text is not None else (0 if run_id else None)
        sub, live_from = hub.subscribe(run_id=run_id, tag=tag)
    except DuctapeError as exc:
        await websocket.accept()
        await _close_with_error(websocket, exc.code, exc.message, 4000 + http_status(exc))
        return
    try:
        await websocket.accept()
        await _pump(websocket, hub.events(sub, since, live_from))
    except Lagging as lag:
        await _close_with_error(websocket, "LAGGING", str(lag), 4408, since=lag.cursor)
    finally:
        hub.unsubscribe(sub)


async def _pump(websocket: WebSocket, events: AsyncIterator[dict[str, Any]]) -> None:
    """Send events until the client goes away (a reader task notices the close)."""

    async def read_until_closed() -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
        except (WebSocketDisconnect, RuntimeError):
            return

    async def send_all() -> None:
        async for event in events:
            await websocket.send_text(json.dumps(event, default=str))

    reader = asyncio.ensure_future(read_until_closed())
    sender = asyncio.ensure_future(send_all())
    try:
        done, _ = await asyncio.wait({reader, sender}, return_when=asyncio.FIRST_COMPLETED)
        if sender in done:
            sender.result()  # re-raise Lagging (or a send error) to the caller
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        for task in (reader, sender):
            task.cancel()
        await asyncio.gather(reader, sender, return_exceptions=True)


async def _close_with_error(
    websocket: WebSocket, code: str, message: str, close_code: int, **extra: Any
) -> None:
    try:
        await websocket.send_text(
            json.dumps({"type": "error", **error_body(code, message, **extra)})
        )
        await websocket.close(code=close_code, reason=code)
    except (WebSocketDisconnect, RuntimeError):
        pass
