"""`ductape dev`: re-define and reload on every change, with an in-process worker on the newest code.

A module with an error is reported and the last good code keeps serving.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ductape_cli.config import CONFIG_NAME, load_config
from ductape_cli.errors import DuctapeError

if TYPE_CHECKING:
    from ductape_cli.definitions import DefineReport
    from ductape_cli.engine.engine import Engine
    from ductape_cli.engine.worker import Worker

Report = Callable[[str], None]
ShowReport = Callable[["DefineReport"], None]


class DevLoop:
    def __init__(
        self, root: Path, *, report: Report, show: ShowReport, concurrency: int = 1
    ) -> None:
        self.root = root
        self.report = report
        self.show = show
        self.concurrency = concurrency
        self.engine: Engine | None = None
        self.worker: Worker | None = None
        self._thread: threading.Thread | None = None

    def reload(self) -> bool:
        """Re-define everything on fresh modules; swap the worker only if it all compiled."""
        from ductape_cli.components.checks import validate_components
        from ductape_cli.definitions import define_all
        from ductape_cli.engine.engine import Engine
        from ductape_cli.engine.triggers import declared_triggers

        try:
            engine = Engine(load_config(self.root))
            validate_components(engine.config, engine.config.default_env)
            registry = engine.registry()
            report = define_all(engine)
        except DuctapeError as exc:
            self.report(f"✗ {exc.message}; still serving the last good code")
            return False
        self.show(report)
        failures = report.errors or [str(e) for e in registry.errors]
        if failures:
            for failure in failures:
                self.report(f"✗ {failure}")
            if self.engine is not None:
                self.report("still serving the last good code")
                return False
        try:
            declared_triggers(
                engine
            )  # checked here: in the worker's thread it would end the worker
        except DuctapeError as exc:
            self.report(
                f"✗ {exc.message}; "
                + (
                    "still serving the last good code"
                    if self.engine
                    else "fix it to start the worker"
                )
            )
            return False
        self._swap(engine)
        return True

    def _swap(self, engine: Engine) -> None:
        from ductape_cli.engine.worker import Worker

        self.stop_worker()
        self.engine = engine
        self.worker = Worker(engine, concurrency=self.concurrency, report=self.report)
        self._thread = threading.Thread(
            target=self.worker.run, name="ductape-dev-worker", daemon=True
        )
        self._thread.start()
        self.report(f"worker running on {len(engine.registry().by_tag)} workflows")

    def stop_worker(self) -> None:
        if self.worker is not None and self._thread is not None:
            self.worker.stop()
            self._thread.join(timeout=30)
            if self.engine is not None:
                self.engine.close()
        self.worker = self._thread = None

    def watched(self) -> list[Path]:
        config = load_config(self.root)
        paths = [config.workflows_dir]
        if (self.root / CONFIG_NAME).exists():
            paths.append(self.root / CONFIG_NAME)
        return [p for p in paths if p.exists()]

    def run(self, stop_event: threading.Event | None = None) -> None:
        """Serve until Ctrl-C (or `stop_event`), reloading on each change."""
        import watchfiles

        self.reload()
        try:
            for changes in watchfiles.watch(
                *self.watched(), watch_filter=_relevant, debounce=300, stop_event=stop_event
            ):
                names = sorted({Path(path).name for _, path in changes})
                self.report(f"changed: {', '.join(names)}")
                self.reload()
        except KeyboardInterrupt:
            pass
        finally:
            self.report("stopping")
            self.stop_worker()


def _relevant(change: Any, path: str) -> bool:
    return path.endswith(".py") or path.endswith(CONFIG_NAME)
