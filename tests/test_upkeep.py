"""Retention (`ductape prune`, `[retention]`), `store backup` and `store vacuum`."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

FLOWS = """
    from ductape_cli import workflow

    @workflow("quick")
    async def quick(ctx):
        await ctx.step("a", lambda: {"n": 1})
        if ctx.input.fail:
            await ctx.step("b", lambda: 1 / 0)
        return "ok"

    @workflow("waiter")
    async def waiter(ctx):
        await ctx.step("a", lambda: 1)
        return await ctx.wait_for_signal("go")

    @workflow("keeper")
    async def keeper(ctx):
        await ctx.workflow("child-" + ctx.workflow_id, ctx.input.child, {}, parent_close_policy="abandon")
        return await ctx.wait_for_signal("go")
"""

DAY = 86_400


@pytest.fixture
def flows(project):
    project.write("flows", FLOWS)
    return project


def age(engine, run_id: str, days: float) -> None:
    """Make a run look as if it ended `days` ago."""
    engine.store.set_run_fields(run_id, {"ended_at": time.time() - days * DAY})


def rows(store_path: Path, run_id: str) -> dict[str, int]:
    conn = sqlite3.connect(store_path)
    try:
        counts = {
            t: conn.execute(f"SELECT COUNT(*) FROM {t} WHERE run_id = ?", (run_id,)).fetchone()[0]
            for t in ("steps", "attempts", "events", "signals", "hooks")
        }
        counts["runs"] = conn.execute(
            "SELECT COUNT(*) FROM runs WHERE id = ?", (run_id,)
        ).fetchone()[0]
        return counts
    finally:
        conn.close()


def test_prune_removes_only_old_ended_runs_and_everything_they_own(flows, cli) -> None:
    engine = flows.engine()
    old = engine.run("quick", {})["workflow_id"]
    old_failed = engine.run("quick", {"fail": True})["workflow_id"]
    recent = engine.run("quick", {})["workflow_id"]
    waiting = engine.run("waiter", {})["workflow_id"]
    engine.signal(
        waiting, "go", {}, continue_inline=False
    )  # a buffered signal row that must survive
    for run_id in (old, old_failed):
        age(engine, run_id, 40)
    engine.store.set_run_fields(
        waiting, {"created_at": time.time() - 90 * DAY, "started_at": time.time() - 90 * DAY}
    )
    assert rows(flows.store, old_failed)["attempts"] == 1

    dry = cli("prune", "--older-than", "30d", "--dry-run", "--json").json()
    assert (
        dry["count"] == 2
        and sorted(dry["runs"]) == sorted([old, old_failed])
        and dry["dry_run"] is True
    )
    assert rows(flows.store, old)["runs"] == 1

    done = cli("prune", "--older-than", "30d")
    assert done.exit_code == 0
    assert done.stdout.splitlines() == [
        "removed 2 runs ended more than 30d ago",
        "  quick: 2",
        "  by status: completed 1, failed 1",
    ]
    for run_id in (old, old_failed):
        assert rows(flows.store, run_id) == {
            "steps": 0,
            "attempts": 0,
            "events": 0,
            "signals": 0,
            "hooks": 0,
            "runs": 0,
        }
    assert rows(flows.store, recent)["runs"] == 1
    assert rows(flows.store, waiting) == {**rows(flows.store, waiting), "runs": 1, "signals": 1}
    assert engine.drive(waiting)["status"] == "completed"


def test_prune_filters_by_status_and_workflow_in_batches(flows, cli) -> None:
    engine = flows.engine()
    ids = [engine.run("quick", {"fail": n % 2 == 1})["workflow_id"] for n in range(7)]
    for run_id in ids:
        age(engine, run_id, 2)
    paged = cli("prune", "--older-than", "1d", "--batch", "2", "--dry-run", "--json").json()
    assert sorted(paged["runs"]) == sorted(ids)
    only_failed = cli("prune", "--older-than", "1d", "--status", "failed", "--json").json()
    assert sorted(only_failed["runs"]) == sorted(ids[1::2])
    assert cli("prune", "--older-than", "1d", "--workflow", "waiter", "--json").json()["count"] == 0
    batched = cli("prune", "--older-than", "1d", "--batch", "2", "--json").json()
    assert sorted(batched["runs"]) == sorted(ids[0::2])
    assert engine.store.count_runs() == 0


def test_prune_never_breaks_a_family(flows, cli) -> None:
    engine = flows.engine()
    # A parent that ended while its (abandoned) child still waits: both stay.
    parent = engine.run("keeper", {"child": "waiter"})["workflow_id"]
    engine.cancel(parent, "stop")
    child = f"child-{parent}"
    assert (
        engine.get_run(parent).status == "cancelled" and engine.get_run(child).status == "running"
    )
    # A child that ended while its parent still waits: both stay (the parent may still read it).
    waiting_parent = engine.run("keeper", {"child": "quick"})["workflow_id"]
    ended_child = f"child-{waiting_parent}"
    assert (
        engine.get_run(ended_child).status == "completed"
        and engine.get_run(waiting_parent).status == "running"
    )
    for run_id in (parent, ended_child):
        age(engine, run_id, 10)
    assert cli("prune", "--older-than", "1d", "--json").json()["count"] == 0
    # Once the families end, they go together.
    engine.signal(child, "go", {})
    engine.signal(waiting_parent, "go", {})
    for run_id in (parent, child, waiting_parent, ended_child):
        age(engine, run_id, 10)
    assert sorted(cli("prune", "--older-than", "1d", "--json").json()["runs"]) == sorted(
        [parent, child, waiting_parent, ended_child]
    )


def test_retention_table_is_the_default_policy(flows, cli) -> None:
    config = flows.root / "ductape.toml"
    config.write_text(
        config.read_text() + '\n[retention]\nolder_than = "7d"\nstatus = "completed"\n'
    )
    engine = flows.engine()
    kept = engine.run("quick", {"fail": True})["workflow_id"]
    gone = engine.run("quick", {})["workflow_id"]
    for run_id in (kept, gone):
        age(engine, run_id, 8)
    assert cli("prune", "--json").json()["runs"] == [gone]


def test_a_worker_applies_the_retention_table(flows, cli) -> None:
    config = flows.root / "ductape.toml"
    config.write_text(config.read_text() + '\n[retention]\nolder_than = "1d"\n')
    engine = flows.engine()
    old = engine.run("quick", {})["workflow_id"]
    age(engine, old, 2)
    fresh = engine.run("quick", {})["workflow_id"]
    result = cli("worker", "--once")
    assert result.exit_code == 0
    assert "retention: removed 1 run ended more than 1d ago" in result.stderr
    assert engine.store.get_run(old) is None and engine.store.get_run(fresh) is not None


def test_the_worker_prunes_when_it_starts_and_then_daily(flows) -> None:
    from ductape_cli.engine.upkeep import RetentionPolicy, RetentionTimer

    engine = flows.engine()

    class Clock:
        now_value = time.time()

        def now(self) -> float:
            return self.now_value

    engine.clock = Clock()  # type: ignore[assignment]
    timer = RetentionTimer(engine, RetentionPolicy.build("1d"))
    first = engine.run("quick", {})["workflow_id"]
    age(engine, first, 2)
    assert timer.tick()["runs"] == [first]  # type: ignore[index]
    second = engine.run("quick", {})["workflow_id"]
    age(engine, second, 2)
    engine.clock.now_value += 3600
    assert timer.tick() is None  # not due again yet
    engine.clock.now_value += DAY
    assert timer.tick()["runs"] == [second]  # type: ignore[index]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[retention]\nstatus = "completed"\n', "[retention] needs older_than"),
        ('[retention]\nolder_than = "soon"\n', "[retention] invalid older_than 'soon'"),
        (
            '[retention]\nolder_than = "1d"\nstatus = "running"\n',
            "[retention] status 'running' is not an end status",
        ),
        ('[retention]\nolder_than = "1d"\nkeep = 3\n', "[retention] unknown key 'keep'"),
    ],
)
def test_bad_retention_config(flows, cli, toml: str, message: str) -> None:
    config = flows.root / "ductape.toml"
    config.write_text(config.read_text() + "\n" + toml)
    result = cli("prune")
    assert result.exit_code == 2
    assert (
        message in result.stderr
        and f"{config}:" in result.stderr
        and result.stderr.count("\n") == 1
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("prune",),
            "prune needs --older-than (e.g. --older-than 30d) or a [retention] table in ductape.toml",
        ),
        (("prune", "--older-than", "a month"), "invalid --older-than 'a month'"),
        (
            ("prune", "--older-than", "1d", "--status", "running"),
            "--status 'running' is not an end status",
        ),
    ],
)
def test_bad_prune_input(flows, cli, args, message) -> None:
    flows.engine().run("quick", {})
    result = cli(*args)
    assert result.exit_code == 2 and message in result.stderr


def test_backup_and_vacuum(flows, cli, tmp_path: Path) -> None:
    engine = flows.engine()
    ids = [engine.run("quick", {})["workflow_id"] for _ in range(30)]
    target = tmp_path / "backup.db"
    made = cli("store", "backup", str(target), "--json")
    assert made.exit_code == 0, made.stderr
    copy = sqlite3.connect(target)
    assert copy.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 30
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    copy.close()
    refused = cli("store", "backup", str(target))
    assert (
        refused.exit_code == 2
        and refused.stderr
        == f"ductape: {target} already exists; choose a new file (a backup never overwrites)\n"
    )
    for run_id in ids:
        age(engine, run_id, 2)
    assert cli("prune", "--older-than", "1d").exit_code == 0
    vacuumed = cli("store", "vacuum", "--json").json()
    assert vacuumed["bytes_after"] <= vacuumed["bytes_before"]
    assert cli("store", "vacuum").stdout.startswith("vacuumed ")


def test_store_commands_refuse_what_they_cannot_do(
    project, cli, tmp_path: Path, monkeypatch
) -> None:
    assert cli("store", "backup", str(tmp_path / "b.db")).stderr.startswith("ductape: no store at ")
    assert (
        cli("store", "backup", str(tmp_path / "nowhere" / "b.db")).stderr
        == f"ductape: folder {tmp_path / 'nowhere'} does not exist\n"
    )
    monkeypatch.setenv("DUCTAPE_STORE", "postgresql://localhost/ductape")
    result = cli("store", "backup", str(tmp_path / "b.db"))
    assert (
        result.exit_code == 2
        and result.stderr
        == "ductape: `ductape store backup` is for SQLite stores; on PostgreSQL use pg_dump\n"
    )
