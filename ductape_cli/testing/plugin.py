"""The pytest plugin (entry point `pytest11`): the `ductape_env` fixture.

The project is the nearest folder holding ductape.toml: the `ductape_project`
ini option if set, else DUCTAPE_PROJECT, else found from the current folder,
else from pytest's rootdir. Per test, ``@pytest.mark.ductape(...)`` passes
options to `WorkflowTestEnv` (``auto_skip=False``, ``start="2026-01-01"``,
``store="file"``, ``workflows=False``, ``project="path"``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ductape_cli.config import find_project_root
from ductape_cli.testing.env import WorkflowTestEnv


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "ductape_project",
        "folder holding ductape.toml for ductape_env (default: found from cwd / rootdir)",
        default="",
    )
    parser.addini(
        "ductape_store",
        "store for ductape_env: memory (default) or file (a temporary SQLite file)",
        default="memory",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ductape(**options): WorkflowTestEnv options for ductape_env (auto_skip, start, store, workflows, project)",
    )


def project_root(config: pytest.Config, explicit: str | None = None) -> Path:
    """Where ductape_env looks for ductape.toml (see the module docstring)."""
    rootdir = Path(config.rootpath)
    named = explicit or config.getini("ductape_project") or os.environ.get("DUCTAPE_PROJECT")
    if named:
        path = Path(named)
        return path if path.is_absolute() else rootdir / path
    return find_project_root(Path.cwd()) or find_project_root(rootdir) or rootdir


@pytest.fixture
def ductape_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkflowTestEnv]:
    """A `WorkflowTestEnv`: the project's workflows on a scratch store, with a virtual clock."""
    marker = request.node.get_closest_marker("ductape")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    root = project_root(request.config, options.pop("project", None))
    store = options.pop("store", None) or request.config.getini("ductape_store") or "memory"
    if store == "memory":
        store = ":memory:"
    elif store == "file":
        store = str(tmp_path / "ductape-state.db")
    env = WorkflowTestEnv(root, store=store, **options)
    try:
        yield env
    finally:
        env.close()
