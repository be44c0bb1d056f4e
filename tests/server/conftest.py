"""A live `ductape serve` (uvicorn in a thread, a free port) over a temporary project."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Project

TOKEN = "test-token-0123456789abcdef"

WORKFLOWS = """
from ductape_cli import workflow


@workflow("greet")
async def greet(ctx):
    first = await ctx.step("first", lambda: {"n": 1})
    second = await ctx.step("second", lambda: {"n": first["n"] + 1})
    await ctx.step("third", lambda: {"n": second["n"] + 1})
    return {"hello": ctx.input.name or "world", "n": 3}


@workflow("approval", signals={"approve": {"by": "string"}})
async def approval(ctx):
    await ctx.step("request", lambda: {"requested": True})
    decision = await ctx.wait_for_signal("approve")
    return {"approved_by": decision["by"]}


@workflow("hooked")
async def hooked(ctx):
    hook = await ctx.create_hook("document-approval", {"doc": ctx.input.doc})
    answer = await hook.wait()
    return {"answer": answer}


def explode():
    raise RuntimeError("boom")


@workflow("failing")
async def failing(ctx):
    await ctx.step("ok", lambda: 1)
    await ctx.step("explode", explode)


@workflow("family")
async def family(ctx):
    child = await ctx.workflow("child-" + ctx.workflow_id, "greet", {"name": "kid"})
    return {"child": child}
"""


@dataclass
class Served:
    project: Project
    service: Any
    url: str
    token: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> Any:
        import httpx

        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=30, verify=tls())

    def ws_url(self, path: str) -> str:
        return "ws" + self.url[len("http") :] + path


@functools.cache
def tls() -> Any:
    """One TLS context for every test client: httpx builds one per client by default, and loading
    the CA bundle (~25 ms) was most of what a request to the test server cost."""
    import httpx

    return httpx.create_ssl_context()


def start_service(
    project: Project, *, worker: bool = True, cors: list[str] | None = None, **limits: Any
) -> Any:
    from ductape_cli.config import load_config
    from ductape_cli.server.service import Service
    from ductape_cli.server.settings import ServeSettings

    settings = ServeSettings(token=TOKEN, cors=cors or [], **limits)
    service = Service(load_config(project.root), settings, port=0, worker=worker, concurrency=2)
    service.start()
    return service


_stopping: list[tuple[threading.Thread, list[BaseException]]] = []


def stop_service(service: Any) -> None:
    """Stop a test's service. uvicorn takes ~0.2 s to stop whatever it serves (a 0.1 s tick, then a
    fixed 0.1 s grace), so on SQLite, where nothing of one test's project is used by the next, the
    stop overlaps the next test; `_services_stopped` joins every one and re-raises its error. A
    PostgreSQL test's schema is dropped as soon as the test ends, so there it stops at once."""
    if "://" in os.environ.get("DUCTAPE_STORE", ""):
        service.stop()
        return
    # Nothing of it may still work while the next test runs: no new claims, no new requests.
    if service.worker is not None:
        service.worker.stop()
    if service._server is not None:
        service._server.should_exit = True
    errors: list[BaseException] = []

    def stop() -> None:
        try:
            service.stop()
        except BaseException as exc:  # noqa: BLE001 - re-raised by _services_stopped
            errors.append(exc)

    thread = threading.Thread(target=stop, name="test-service-stop", daemon=True)
    thread.start()
    _stopping.append((thread, errors))


@pytest.fixture(scope="session", autouse=True)
def _services_stopped() -> Iterator[None]:
    yield
    for thread, errors in _stopping:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a test service did not stop within 30 s"
        if errors:
            raise errors[0]


@pytest.fixture
def served(project: Project) -> Iterator[Served]:
    project.write("flows", WORKFLOWS)
    service = start_service(project, cors=["http://app.example"])
    try:
        yield Served(project, service, f"http://127.0.0.1:{service.port}", TOKEN)
    finally:
        stop_service(service)
