"""Shared fixtures: a temporary project (ductape.toml + workflows/), its engine, and the CLI runner."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent

CONFIG = """\
[project]
name = "test-product"
workflows = "workflows"
store = ".ductape/state.db"
default_env = "dev"

[envs.dev]
active = true

[envs.prd]
active = false
"""


# With DUCTAPE_TEST_STORE=postgresql these tests are skipped: they check the SQLite file itself
# (its permissions, a corrupted or emptied file, its query plans, rows read with sqlite3, its path in
# a message, backup and vacuum), which a PostgreSQL project does not have, or what a command imports
# (psycopg imports asyncio).
READS_THE_SQLITE_FILE = (
    "tests/test_component_shapes.py::test_define_stores_the_shape_not_the_values",
    "tests/test_status_plain.py::test_piped_status_imports_no_rich",
    "tests/test_run_fast_path.py::test_piped_run_and_status_import_nothing_heavy",
    "tests/test_executor.py::test_a_step_row_is_written_before_the_run_goes_on_past_a_plain_await",
    "tests/hardening/test_store_file.py",
    "tests/hardening/test_poison_runs.py::test_worker_once_on_a_corrupt_store_exits_2",
    "tests/hardening/test_poison_runs.py::test_worker_on_a_broken_store_backs_off_instead_of_spinning",
    "tests/hardening/test_run_ids.py::test_status_prefix_uses_a_range_on_the_primary_key",
    "tests/hardening/test_bad_json.py::test_history_json_never_prints_nan",
    "tests/hardening/test_hooks_atomic.py::test_a_failed_delivery_does_not_burn_the_token",
    "tests/hardening/test_large_inputs.py::test_the_input_is_stored_once_and_history_still_shows_it",
    "tests/test_cli_core.py::test_taken_workflow_id_is_refused",
    "tests/test_define_cli.py",
    "tests/test_transfer.py::test_taken_ids_are_refused_and_rename_gives_new_ones",
    "tests/test_upkeep.py",
    "tests/test_store.py",
)


@dataclass
class Project:
    root: Path

    @property
    def store(self) -> Path:
        return self.root / ".ductape" / "state.db"

    def write(self, name: str, source: str) -> Path:
        """Write workflows/<name>.py (dedented) and return its path."""
        path = self.root / "workflows" / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        return path

    def engine(self) -> Any:
        from ductape_cli.config import load_config
        from ductape_cli.engine.engine import Engine

        return Engine(load_config(self.root))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    yield from make_project(tmp_path, monkeypatch, os.environ.get("DUCTAPE_TEST_STORE", "sqlite"))


def make_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> Iterator[Project]:
    """A project whose store is a SQLite file, or (backend "postgresql") a PostgreSQL schema of its own."""
    (tmp_path / "ductape.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "workflows").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DUCTAPE_STORE", raising=False)
    monkeypatch.delenv("DUCTAPE_PROJECT", raising=False)
    # Each test imports its own workflow modules; forget the previous test's.
    for name in [m for m in sys.modules if m.startswith("ductape_workflows")]:
        del sys.modules[name]
    if backend == "postgresql":
        # DUCTAPE_TEST_STORE=postgresql runs the whole suite so (README "Scaling out").
        from tests.pg import pg_schema

        with pg_schema() as url:
            monkeypatch.setenv("DUCTAPE_STORE", url)
            yield Project(tmp_path)
        return
    yield Project(tmp_path)


@pytest.fixture
def gates() -> Iterator[Callable[[str], Any]]:
    """`gates(name)`: the event workflow code waits on with `tests.gates.gate(name)`; fresh per test."""
    from tests import gates as events

    events.release_all()
    yield events.gate
    events.release_all()


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@functools.cache
def ductape_command() -> Any:
    """The click command of the whole `ductape` app, built once: typer's runner rebuilds it from the
    app's functions on every call (~50 ms, most of a CLI test's time)."""
    import typer

    from ductape_cli.cli.app import app

    return typer.main.get_command(app)


def invoke_cli(*args: str, input: str | None = None) -> CliResult:
    """Invoke `ductape ARGS...` in-process, as typer's runner does but with the command built once."""
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        runner = CliRunner()
    command = ductape_command()
    # `worker`/`serve`/`dev` install a log handler on the runner's stream; it closes with the call.
    logger = logging.getLogger("ductape")
    handlers, level = list(logger.handlers), logger.level
    try:
        with runner.isolation(input=input) as streams:
            stdout, stderr = streams[0], streams[1]
            try:
                command.main(args=list(args), prog_name=runner.get_default_prog_name(command))
                exit_code = 0
            except SystemExit as ended:
                exit_code = 0 if ended.code is None else ended.code
                if not isinstance(exit_code, int):
                    sys.stdout.write(f"{exit_code}\n")
                    exit_code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            out = stdout.getvalue().decode(runner.charset, "replace").replace("\r\n", "\n")
            err = b"" if stderr is None else stderr.getvalue()
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
    return CliResult(exit_code, out, err.decode(runner.charset, "replace").replace("\r\n", "\n"))


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """Invoke `ductape ARGS...` in-process (see `invoke_cli`)."""
    return invoke_cli


def ductape_subprocess_env(project_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["DUCTAPE_PROJECT"] = str(project_root)
    if "://" not in os.environ.get("DUCTAPE_STORE", ""):  # a PostgreSQL project's schema goes along
        env.pop("DUCTAPE_STORE", None)
    return env


def ductape_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ductape_cli", *args]


_DURABILITY_LINES: list[str] = []


@pytest.fixture
def durability_report() -> Callable[[str], None]:
    """Process and torture tests report what they checked (runs, kills, duplicates); printed at the end,
    each line naming the backend it ran on."""

    def report(line: str) -> None:
        backend = "postgresql" if "://" in os.environ.get("DUCTAPE_STORE", "") else "sqlite"
        _DURABILITY_LINES.append(f"[{backend}] {line}")

    return report


_SLOW_FOLDERS = ("process", "torture")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Process and torture tests are `slow`: `pytest -m "not slow"` is the quick loop.
    On PostgreSQL (DUCTAPE_TEST_STORE=postgresql) the tests of the SQLite file itself are skipped."""
    on_postgres = os.environ.get("DUCTAPE_TEST_STORE") == "postgresql"
    sqlite_only = pytest.mark.skip(
        reason="checks the SQLite store file itself (DUCTAPE_TEST_STORE=postgresql)"
    )
    for item in items:
        if any(f"tests/{folder}/" in item.nodeid for folder in _SLOW_FOLDERS):
            item.add_marker(pytest.mark.slow)
        if on_postgres and item.nodeid.startswith(READS_THE_SQLITE_FILE):
            item.add_marker(sqlite_only)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _DURABILITY_LINES:
        terminalreporter.section("durability checks")
        for line in _DURABILITY_LINES:
            terminalreporter.write_line(line)
