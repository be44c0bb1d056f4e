"""Every torture test runs on both backends: the project's store is a SQLite file, then a PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Project, make_project


@pytest.fixture(params=["sqlite", "postgresql"])
def project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    if request.param == "postgresql" and request.module.__name__.endswith("test_bad_environment"):
        pytest.skip(
            "bad environments are faults of a store file (permissions, disk, locks): SQLite only"
        )
    yield from make_project(tmp_path, monkeypatch, request.param)
