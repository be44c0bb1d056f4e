"""`ductape serve`: the HTTP/WebSocket API (and a worker) for browsers and other languages."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from ductape_cli.cli.common import LogFormat, LogLevel, command, setup_logging


def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; anything but loopback needs the token.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="Port to bind.")
    ] = 8737,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Also execute runs in this process.")
    ] = True,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency", "-c", min=1, max=64, help="Runs the worker executes at once."
        ),
    ] = 4,
    auth: Annotated[
        bool,
        typer.Option(
            "--auth/--no-auth", help="Require the bearer token (--no-auth: loopback only)."
        ),
    ] = True,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log", help="Log each request (never its query string)."
        ),
    ] = True,
    log_level: LogLevel = None,
    log_format: LogFormat = "text",
) -> None:
    """Serve the HTTP and WebSocket API, /sdk.js for browsers, and a worker.

    Example: ductape serve --port 8737

    Every /api request needs `Authorization: Bearer <token>`: the token is DUCTAPE_TOKEN, or
    .ductape/serve.token (made on first serve, mode 0600, printed once).
    """
    from ductape_cli.cli.common import project_config
    from ductape_cli.server.service import Service, require_serve_extra
    from ductape_cli.server.settings import settings_for, token_path

    require_serve_extra()
    setup_logging(log_level, log_format, default="info")
    config = project_config()
    settings, created = settings_for(config, host, auth=auth)
    if not access_log:
        logging.getLogger("ductape.server").setLevel(logging.WARNING)
    service = Service(
        config, settings, host=host, port=port, worker=worker, concurrency=concurrency
    )
    for problem in service.prepare():
        typer.echo(f"ductape: {problem}", err=True)
    if created:
        typer.echo(
            f"API token (stored in {token_path(config)}, shown only this once): {settings.token}"
        )
    elif settings.token is None:
        typer.echo("no token: anyone on this machine can call the API (--no-auth)", err=True)
    where = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    typer.echo(
        f"serving {where}  (API {where}/api/workflows, JS client {where}/sdk.js, worker {'on' if worker else 'off'})"
    )
    service.run()


def register(app: typer.Typer) -> None:
    command(app, serve)
