"""`ductape store migrate|info|copy`: a SQLite project grows into PostgreSQL and back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project, make_project
from tests.pg import pg_schema


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """A SQLite project, whatever DUCTAPE_TEST_STORE says: these tests move it to PostgreSQL themselves."""
    yield from make_project(tmp_path, monkeypatch, "sqlite")


FLOWS = """
    from ductape_cli import workflow

    @workflow("order")
    async def order(ctx):
        total = await ctx.step("price", lambda: {"total": 42})
        await ctx.step("charge", lambda: total)
        return total

    @workflow("approval")
    async def approval(ctx):
        return await ctx.wait_for_signal("approve")
"""


def _history(engine: Any, run_id: str) -> list[tuple[str, str | None]]:
    return [(e.type, e.step) for e in engine.store.events(run_id)]


def test_migrate_applies_the_schema_once_and_info_describes_the_store(
    project: Any, cli: Any, monkeypatch: Any
) -> None:
    with pg_schema() as url:
        monkeypatch.setenv("DUCTAPE_STORE", url)
        first = cli("store", "migrate", "--json").json()
        assert (
            first["backend"] == "postgresql"
            and first["schema_before"] == 0
            and first["applied"] == first["schema_version"]
        )
        again = cli("store", "migrate")
        assert again.exit_code == 0 and "already up to date" in again.stdout
        info = cli("store", "info", "--json").json()
        assert info["backend"] == "postgresql" and info["schema_version"] == info["schema_latest"]
        assert info["counts"]["runs"] == 0
    monkeypatch.delenv("DUCTAPE_STORE")
    project.write("flows", FLOWS)
    assert cli("run", "order").exit_code == 0
    text = cli("store", "info").stdout
    assert "backend  sqlite" in text and "1 completed" in text


def test_a_sqlite_project_is_copied_to_postgresql_and_back(
    project: Any, cli: Any, monkeypatch: Any, tmp_path: Any
) -> None:
    project.write("flows", FLOWS)
    done = cli("run", "order", "--json").json()["workflow_id"]
    waiting = cli("run", "approval", "--detach", "--json").json()["workflow_id"]
    assert cli("dispatch", "order", "--cron", "0 3 * * *").exit_code == 0
    engine = project.engine()
    engine.store.append_message("local", "orders", {"n": 1}, done, 1.0)
    before = {run_id: _history(engine, run_id) for run_id in (done, waiting)}
    sqlite_path = str(project.store)

    with pg_schema() as url:
        copied = cli("store", "copy", "--from", sqlite_path, "--to", url, "--json").json()
        assert (copied["runs"], copied["schedules"], copied["topic_messages"]) == (2, 1, 1)
        assert copied["definitions"] >= 2 and "***" not in copied["to"]
        again = cli("store", "copy", "--from", sqlite_path, "--to", url, "--json").json()
        assert (again["runs"], again["skipped_runs"], again["schedules"]) == (
            0,
            2,
            0,
        )  # a second copy adds nothing

        monkeypatch.setenv("DUCTAPE_STORE", url)  # the project now runs on PostgreSQL
        moved = project.engine()
        assert {run_id: _history(moved, run_id) for run_id in (done, waiting)} == before
        assert moved.store.get_run(done).output == {"total": 42}
        assert [s["tag"] for s in moved.store.list_schedules()] == ["order"]
        # definitions keep their project's namespace (the project sees them, not under '')
        assert {d["tag"] for d in moved.store.list_definitions()} >= {"order", "approval"}
        signalled = cli("signal", waiting, "approve", "--data", '{"ok": true}', "--json")
        assert signalled.exit_code == 0, signalled.stderr
        assert moved.store.get_run(waiting).output == {"ok": True}
        status = json.loads(cli("status", done, "--json").stdout)
        assert status["status"] == "completed"
        monkeypatch.delenv("DUCTAPE_STORE")

        back = tmp_path / "back" / "state.db"
        report = cli("store", "copy", "--from", url, "--to", f"sqlite:///{back}", "--json").json()
        assert report["runs"] == 2
    from ductape_cli.store import open_store

    returned = open_store(str(back))
    assert returned.get_run(waiting).status == "completed" and returned.get_run(done).output == {
        "total": 42
    }
    assert [m["message"] for m in returned.read_messages("local", "orders")] == [{"n": 1}]
    returned.close()


def test_bad_locations_are_one_line_errors(project: Any, cli: Any) -> None:
    same = cli("store", "copy", "--from", "a.db", "--to", "a.db")
    assert same.exit_code == 2 and same.stderr == "ductape: --from and --to name the same store\n"
    unknown = cli("store", "copy", "--from", "mysql://x/y", "--to", "b.db")
    assert unknown.exit_code == 2 and unknown.stderr.startswith(
        "ductape: unknown store scheme 'mysql'"
    )
    assert "Traceback" not in unknown.stderr


def test_an_unreachable_server_is_one_line_and_exit_2(
    project: Any, cli: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("DUCTAPE_PG_CONNECT_TIMEOUT", "0.2")
    import ductape_cli.store.postgres as postgres

    # Nothing listens on port 1, so the pool never connects: a fifth of a second shows it.
    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT", 0.2)
    monkeypatch.setenv("DUCTAPE_STORE", "postgresql://ductape:secret@127.0.0.1:1/nowhere")
    result = cli("list")
    assert result.exit_code == 2
    assert (
        result.stderr
        == "ductape: cannot connect to store postgresql://ductape:***@127.0.0.1:1/nowhere within 0.2s\n"
    )


def test_a_postgresql_store_without_psycopg_is_one_line(
    project: Any, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.delitem(sys.modules, "ductape_cli.store.postgres", raising=False)
    monkeypatch.setenv("DUCTAPE_STORE", "postgresql://postgres@127.0.0.1/test")
    result = cli("list")
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == "ductape: a postgresql:// store needs psycopg: pip install 'ductape[postgres]'"
    )
