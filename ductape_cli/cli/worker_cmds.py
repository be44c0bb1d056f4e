"""The long-running command: `ductape worker`."""

from __future__ import annotations

import signal as signals
import sys
from typing import Annotated

import typer

from ductape_cli.cli.common import command, engine
from ductape_cli.components.checks import validate_components


def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, max=64, help="Runs executed at once.")] = 1,
    workflow: Annotated[list[str] | None, typer.Option("--workflow", "-w", help="Only runs of this tag (repeatable).")] = None,
    once: Annotated[bool, typer.Option("--once", help="Execute what is due now, then exit.")] = False,
    poll: Annotated[float, typer.Option("--poll", min=0.05, max=60.0, help="Seconds between polls when idle.")] = 0.25,
) -> None:
    """Run due work: queued and woken runs, signals, cancellations, crash recovery, schedules.

    Example: ductape worker --concurrency 4

    SIGINT or SIGTERM stop it cleanly: each run finishes its current step and is released.
    """
    from ductape_cli.engine.worker import Worker

    eng = engine()
    validate_components(eng.config, eng.config.default_env)
    eng.registry()  # import every workflow module up front: fail fast on a broken one
    for error in eng.registry().errors:
        typer.echo(f"ductape: {error}", err=True)
    tty = sys.stderr.isatty()

    def report(line: str) -> None:
        if tty:
            from ductape_cli.render.views import console

            console(stderr=True).log(line)
        else:
            typer.echo(line, err=True)

    w = Worker(eng, concurrency=concurrency, tags=workflow, poll_interval=poll, report=report)

    def stop(signum: int, frame: object) -> None:
        report("stopping: finishing current steps and releasing runs")
        w.stop()

    signals.signal(signals.SIGTERM, stop)
    signals.signal(signals.SIGINT, stop)
    report(f"worker {eng.owner} on {eng.store_path} (concurrency {concurrency})")
    processed = w.run(once=once)
    report(f"worker stopped after {processed} executions")
    eng.close()


def dev(
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, max=64, help="Runs executed at once.")] = 1,
) -> None:
    """Develop: re-define on every change to workflows/ or ductape.toml, with a worker on the newest code.

    Example: ductape dev

    A module with an error is reported and the last good code keeps serving; Ctrl-C stops cleanly.
    """
    from ductape_cli.config import load_config
    from ductape_cli.engine.devloop import DevLoop

    config = load_config()
    validate_components(config, config.default_env)

    def report(line: str) -> None:
        typer.echo(line, err=True)

    def show(define_report: object) -> None:
        from ductape_cli.render.definitions import define_report as render
        from ductape_cli.render.views import console

        console(stderr=True).print(render(define_report))  # type: ignore[arg-type]

    DevLoop(config.root, report=report, show=show, concurrency=concurrency).run()


def register(app: typer.Typer) -> None:
    command(app, worker)
    command(app, dev)
