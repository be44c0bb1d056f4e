"""The long-running command: `ductape worker`."""

from __future__ import annotations

import signal as signals
import sys
from typing import Annotated

import typer

from ductape_cli.cli.common import LogFormat, LogLevel, command, engine, setup_logging
from ductape_cli.components.checks import validate_components
from ductape_cli.errors import StoreError


def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, max=64, help="Runs executed at once.")
    ] = 1,
    workflow: Annotated[
        list[str] | None,
        typer.Option("--workflow", "-w", help="Only runs of this tag (repeatable)."),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Execute what is due now, then exit.")
    ] = False,
    poll: Annotated[
        float, typer.Option("--poll", min=0.05, max=60.0, help="Seconds between polls when idle.")
    ] = 0.25,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=1,
            max=65535,
            help="Serve Prometheus metrics at http://HOST:PORT/metrics.",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address the metrics server listens on.")
    ] = "127.0.0.1",
    log_level: LogLevel = None,
    log_format: LogFormat = "text",
) -> None:
    """Run due work: queued and woken runs, signals, cancellations, crash recovery, schedules.

    Example: ductape worker --concurrency 4

    SIGINT or SIGTERM stop it cleanly: each run finishes its current step and is released.
    """
    from ductape_cli.engine.worker import Worker

    setup_logging(log_level, log_format)
    eng = engine()
    eng.check_components()
    eng.registry()  # import every workflow module up front: fail fast on a broken one
    for error in eng.registry().errors:
        typer.echo(f"ductape: {error}", err=True)
    tty = sys.stderr.isatty()

    def report(line: str) -> None:
        if tty:
            from ductape_cli.render.views import console

            console(stderr=True).log(line)
        else:  # two lines per run: a plain write, not typer's echo with its terminal checks
            print(line, file=sys.stderr, flush=True)

    from ductape_cli.engine.upkeep import RetentionTimer, policy_from_config

    ticks = []
    policy = policy_from_config(eng.config)
    if policy is not None:
        timer = RetentionTimer(eng, policy)

        def prune_daily() -> None:
            pruned = timer.tick()
            if pruned is not None:
                from ductape_cli.render.upkeep import prune_lines

                report("retention: " + prune_lines(pruned)[0])

        ticks.append(prune_daily)
    if metrics_port is not None:
        from ductape_cli.observe.metrics import serve

        serve(eng, metrics_port, metrics_host)
        report(f"metrics on http://{metrics_host}:{metrics_port}/metrics")
    from ductape_cli.engine.standby import Standby

    standby = None if once else Standby.for_engine(eng, workflow, every=poll, report=report)
    w = Worker(
        eng,
        concurrency=concurrency,
        tags=workflow,
        poll_interval=poll,
        report=report,
        ticks=ticks,
        standby=standby,
    )

    def stop(signum: int, frame: object) -> None:
        report("stopping: finishing current steps and releasing runs")
        w.stop()

    signals.signal(signals.SIGTERM, stop)
    signals.signal(signals.SIGINT, stop)
    active = "" if standby is None else f"; {standby.limit} active per host"
    processed = w.run(
        once=once,
        ready=lambda: report(
            f"worker {eng.owner} on {eng.store_path} (concurrency {concurrency}{active})"
        ),
    )
    eng.close()
    if w.fatal is not None:
        raise StoreError(w.fatal)
    report(f"worker stopped after {processed} executions")


def dev(
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, max=64, help="Runs executed at once.")
    ] = 1,
    log_level: LogLevel = None,
    log_format: LogFormat = "text",
) -> None:
    """Develop: re-define on every change to workflows/ or ductape.toml, with a worker on the newest code.

    Example: ductape dev

    A module with an error is reported and the last good code keeps serving; Ctrl-C stops cleanly.
    """
    from ductape_cli.cli.common import project_config
    from ductape_cli.engine.devloop import DevLoop

    setup_logging(log_level, log_format)
    config = project_config()
    validate_components(config, config.default_env)

    def report(line: str) -> None:
        typer.echo(line, err=True)

    def show(define_report: object) -> None:
        from ductape_cli.render.output import show as render

        render("define", define_report, stream=sys.stderr)

    DevLoop(config.root, report=report, show=show, concurrency=concurrency).run()


def register(app: typer.Typer) -> None:
    command(app, worker)
    command(app, dev)
