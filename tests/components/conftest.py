"""Real local servers for component tests (HTTP, SMTP) and a project builder.

The HTTP server understands a few paths:
  /items/{id}        echo: method, path, query, headers (not Authorization), JSON body
  /echo              same, any method
  /status/{code}     answer `code` with a JSON error body (echoing the request body)
  /flaky/{key}/{n}   503 for the first n calls per key, then 200
  /slow/{ms}         wait, then 200
  /text              text/plain
Every request is appended to `server.requests`.
"""

from __future__ import annotations

import json
import socket
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

BASE_CONFIG = """\
[project]
name = "components-test"
workflows = "workflows"
store = ".ductape/state.db"
default_env = "dev"

[envs.dev]
active = true

[envs.prd]
active = true

"""


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        seen = {
            "method": self.command,
            "path": parts.path,
            "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
            "headers": {k: v for k, v in self.headers.items()},
            "body": body,
        }
        self.server.requests.append(seen)
        segments = parts.path.strip("/").split("/")
        # The echo leaves out Authorization: tests read it from `server.requests`.
        echo = {
            **seen,
            "headers": {k: v for k, v in seen["headers"].items() if k.lower() != "authorization"},
        }
        status, payload, content_type = 200, echo, "application/json"
        if segments[0] == "status":
            status, payload = int(segments[1]), {"error": f"status {segments[1]}", "echo": body}
        elif segments[0] == "flaky":
            key, failures = segments[1], int(segments[2])
            with self.server.lock:
                count = self.server.counters.get(key, 0) + 1
                self.server.counters[key] = count
            if count <= failures:
                status, payload = 503, {"error": f"try again ({count})"}
            else:
                payload = {"ok": True, "calls": count}
        elif segments[0] == "slow":
            time.sleep(int(segments[1]) / 1000)
        elif segments[0] == "text":
            payload, content_type = "plain words", "text/plain"
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class HttpServer:
    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.requests = []  # type: ignore[attr-defined]
        self.httpd.counters = {}  # type: ignore[attr-defined]
        self.httpd.lock = threading.Lock()  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.httpd.requests  # type: ignore[no-any-return]

    def count(self, path_prefix: str) -> int:
        return sum(1 for r in self.requests if r["path"].startswith(path_prefix))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def http_server() -> Iterator[HttpServer]:
    server = HttpServer()
    yield server
    server.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    return free_port()


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "data": envelope.content.decode("utf-8", "replace"),
            }
        )
        return "250 Message accepted for delivery"


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[Any]:
    controller_module = pytest.importorskip("aiosmtpd.controller")
    mailbox = _Mailbox()
    controller = controller_module.Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    controller.mailbox = mailbox
    yield controller
    controller.stop()


@pytest.fixture
def make(project: Any) -> Callable[..., Any]:
    """Write ductape.toml (BASE_CONFIG + `toml`) and workflows/<name>.py, return the project's Engine."""

    def build(toml: str, source: str | None = None, name: str = "flow") -> Any:
        (project.root / "ductape.toml").write_text(
            BASE_CONFIG + textwrap.dedent(toml), encoding="utf-8"
        )
        if source is not None:
            project.write(name, source)
        return project.engine()

    return build


@pytest.fixture
def runtime(project: Any) -> Callable[..., Any]:
    """A ComponentRuntime for direct use (no run), over BASE_CONFIG + `toml`."""

    def build(toml: str, env: str | None = None) -> Any:
        from ductape_cli.components import ComponentRuntime
        from ductape_cli.config import load_config

        (project.root / "ductape.toml").write_text(
            BASE_CONFIG + textwrap.dedent(toml), encoding="utf-8"
        )
        return ComponentRuntime(load_config(project.root), env=env)

    return build


def _journal(engine: Any, run_id: str) -> dict[str, Any]:
    return {r.tag: r for r in engine.store.load_journal(run_id).values()}


def _recorded(engine: Any, run_id: str) -> str:
    records = [
        {"tag": r.tag, "input": r.input, "output": r.output, "error": r.error}
        for r in engine.store.load_journal(run_id).values()
    ]
    return json.dumps(
        {"steps": records, "history": engine.history(run_id), "result": engine.result(run_id)},
        default=str,
    )


@pytest.fixture
def journal() -> Callable[[Any, str], dict[str, Any]]:
    """journal(engine, run_id) -> {step tag: StepRecord}."""
    return _journal


@pytest.fixture
def recorded() -> Callable[[Any, str], str]:
    """recorded(engine, run_id) -> every step row, event and the result as one JSON string."""
    return _recorded
