"""The serving process: the app on uvicorn, plus (by default) a worker in the same process.

The API and the worker use separate `Engine`s (separate owners), so a cancel
or signal from the API coordinates with the worker's execution through the
store exactly as it would with a worker in another process.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from ductape_cli.config import ProjectConfig
from ductape_cli.engine.engine import Engine
from ductape_cli.engine.worker import Worker
from ductape_cli.server.settings import ServeSettings

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("ductape.server")
worker_log = logging.getLogger("ductape.worker")

WS_MAX_MESSAGE_BYTES = 65_536


SERVE_MODULES = ("fastapi", "uvicorn", "websockets")


def require_serve_extra() -> None:
    """One clear line, before anything is written, when the `serve` extra is not installed."""
    import importlib.util

    from ductape_cli.errors import InvalidInput

    missing = [name for name in SERVE_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise InvalidInput(
            f"ductape serve needs {', '.join(missing)}: pip install 'ductape[serve]'"
        )


class Service:
    def __init__(
        self,
        config: ProjectConfig,
        settings: ServeSettings,
        *,
        host: str = "127.0.0.1",
        port: int = 8737,
        worker: bool = True,
        concurrency: int = 4,
    ) -> None:
        self.config = config
        self.settings = settings
        self.host = host
        self.port = port
        self.engine = Engine(config)
        self.with_worker = worker
        self.concurrency = concurrency
        self.worker: Worker | None = None
        self.problems: list[str] | None = None
        self._worker_thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._server_thread: threading.Thread | None = None

    def prepare(self) -> list[str]:
        """Import every workflow and make sure each is defined (so listings are complete); returns problems."""
        registry = self.engine.registry()
        problems = [str(error) for error in registry.errors]
        for wf in registry.by_tag.values():
            try:
                self.engine.ensure_defined(wf)
            except Exception as exc:  # noqa: BLE001 - one broken workflow must not keep the rest offline
                log.debug("defining %s failed", wf.tag, exc_info=True)
                problems.append(f"{wf.tag}: {exc}")
        if self.with_worker:  # the worker runs the same imported code
            self.worker = Worker(
                Engine(self.config, registry=registry),
                concurrency=self.concurrency,
                poll_interval=0.25,
                report=worker_log.info,
            )
        self.problems = problems
        return problems

    def _uvicorn(self) -> uvicorn.Server:
        import uvicorn

        from ductape_cli.server.app import create_app

        if self.problems is None:
            self.prepare()
        wake = self.worker.wake if self.worker is not None else None
        app = create_app(self.engine, self.settings, wake=wake, metrics=self._metrics())
        config = uvicorn.Config(
            app,
            host=self.host,
            port=self.port,
            access_log=False,
            log_level="warning",
            lifespan="on",
            ws_max_size=WS_MAX_MESSAGE_BYTES,
            timeout_graceful_shutdown=3,
        )
        return _quiet_server(uvicorn)(config)

    def _metrics(self) -> Any:
        """One Metrics over the API's engine (runs started) and the worker's (steps, ends); None without prometheus-client."""
        try:
            from ductape_cli.observe import metrics
        except ImportError:
            return None
        try:
            counted = metrics.enable(self.engine)
        except ImportError:
            log.info(
                "prometheus-client is not installed: /metrics is off (pip install 'ductape[metrics]')"
            )
            return None
        if self.worker is not None and counted not in self.worker.engine.listeners:
            self.worker.engine.listeners.append(counted)
        return counted

    def _start_worker(self) -> None:
        if self.worker is not None:
            self._worker_thread = threading.Thread(
                target=self.worker.run, name="ductape-serve-worker", daemon=True
            )
            self._worker_thread.start()

    def _stop_worker(self) -> None:
        if self.worker is not None and self._worker_thread is not None:
            self.worker.stop()
            self._worker_thread.join(timeout=30)
            self.worker.engine.close()

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM, then stop the worker cleanly (its runs are released) and return."""
        server = self._server = self._uvicorn()

        def stop(signum: int, frame: object) -> None:
            if server.should_exit and signum == signal.SIGINT:
                server.force_exit = True  # a second Ctrl-C: stop waiting for open streams
            server.should_exit = True

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        self._start_worker()
        try:
            server.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._stop_worker()
            self.engine.close()

    # -- in a thread (tests, embedding) ---------------------------------------------------

    def start(self, timeout: float = 30.0) -> int:
        """Serve from a background thread; returns the bound port (give port 0 for a free one)."""
        self._server = self._uvicorn()
        self._start_worker()
        self._server_thread = threading.Thread(
            target=self._server.run, name="ductape-serve", daemon=True
        )
        self._server_thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._server_thread.is_alive() or time.monotonic() > deadline:
                self._stop_worker()
                raise RuntimeError(f"server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        sockets: Any = self._server.servers[0].sockets
        self.port = int(sockets[0].getsockname()[1])
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._server_thread is not None:
            self._server_thread.join(timeout=30)
        self._stop_worker()
        self.engine.close()


def _quiet_server(uvicorn: Any) -> Any:
    """uvicorn's Server without its signal handling: it re-raises SIGTERM after shutdown, which
    would kill the process before the worker is stopped; `Service.run` handles signals itself."""

    class QuietServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            yield

    return QuietServer
