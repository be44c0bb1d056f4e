"""Shared fixtures: a temporary project (ductape.toml + workflows/), its engine, and the CLI runner."""

from __future__ import annotations

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
    (tmp_path / "ductape.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "workflows").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DUCTAPE_STORE", raising=False)
    monkeypatch.delenv("DUCTAPE_PROJECT", raising=False)
    # Each test imports its own workflow modules; forget the previous test's.
    for name in [m for m in sys.modules if m.startswith("ductape_workflows")]:
        del sys.modules[name]
    yield Project(tmp_path)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """Invoke `ductape ARGS...` in-process through typer's runner."""
    from ductape_cli.cli.app import app

    def invoke(*args: str, input: str | None = None) -> CliResult:
        try:
            runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
        except TypeError:
            runner = CliRunner()
        # `worker`/`serve`/`dev` install a log handler on the runner's stream; it closes with the call.
        logger = logging.getLogger("ductape")
        handlers, level = list(logger.handlers), logger.level
        try:
            result = runner.invoke(app, list(args), input=input, catch_exceptions=False)
        finally:
            logger.handlers[:] = handlers
            logger.setLevel(level)
        try:
            stderr = result.stderr
        except ValueError:
            stderr = ""
        return CliResult(result.exit_code, result.stdout, stderr)

    return invoke


def ductape_subprocess_env(project_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["DUCTAPE_PROJECT"] = str(project_root)
    env.pop("DUCTAPE_STORE", None)
    return env


def ductape_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ductape_cli", *args]


_DURABILITY_LINES: list[str] = []


@pytest.fixture
def durability_report() -> Callable[[str], None]:
    """Process and torture tests report what they checked (runs, kills, duplicates); printed at the end."""
    return _DURABILITY_LINES.append


_SLOW_FOLDERS = ("process", "torture")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Process and torture tests are `slow`: `pytest -m "not slow"` is the quick loop."""
    for item in items:
        if any(f"tests/{folder}/" in item.nodeid for folder in _SLOW_FOLDERS):
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _DURABILITY_LINES:
        terminalreporter.section("durability checks")
        for line in _DURABILITY_LINES:
            terminalreporter.write_line(line)
