"""Run ids on the command line: exact, or a unique prefix or suffix; never a wildcard (item 10, issue 15.9)."""

from __future__ import annotations

import pytest

SAMPLE = """
    from ductape_cli import workflow

    @workflow("wait", signals={"go": {}})
    async def wait(ctx):
        await ctx.wait_for_signal("go")
        return "done"
"""


@pytest.fixture
def waiting(project, cli):
    project.write("wait", SAMPLE)
    for run_id in ("order-1", "order-12", "pay_2024", "pay%2025"):
        assert cli("run", "wait", "--workflow-id", run_id, "--json").exit_code == 5
    return project


def _status(project, run_id: str) -> str:
    return str(project.engine().store.get_run(run_id).status)


def test_cancel_with_an_exact_id_never_touches_a_longer_one(waiting, cli) -> None:
    result = cli("cancel", "order-1", "--json")
    assert result.exit_code == 4, result.stderr
    assert result.json()["workflow_id"] == "order-1"
    assert _status(waiting, "order-1") == "cancelled"
    assert _status(waiting, "order-12") == "running"


@pytest.mark.parametrize(
    "pattern", ["pay%2024", "pay_2025", "pay%%%%", "order_1", "%%%%%%", "______"]
)
def test_percent_and_underscore_are_literal_characters(waiting, cli, pattern) -> None:
    result = cli("signal", pattern, "go")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "no run with id" in result.stderr
    for run_id in ("order-1", "order-12", "pay_2024", "pay%2025"):
        assert _status(waiting, run_id) == "running"


def test_a_unique_prefix_acts_and_says_which_run(waiting, cli) -> None:
    result = cli("signal", "order-12"[:7], "go", "--json")  # "order-1" is itself a run: exact wins
    assert result.json()["workflow_id"] == "order-1"
    result = cli("signal", "pay_20", "go", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["workflow_id"] == "pay_2024"
    assert "'pay_20' is run pay_2024" in result.stderr


def test_an_ambiguous_prefix_lists_matches_and_changes_nothing(waiting, cli) -> None:
    engine = waiting.engine()
    ids = [engine.start("wait", {}, detach=True)[0].id for _ in range(6)]
    common = ids[0][:6]  # generated ids share their time prefix
    assert all(i.startswith(common) for i in ids)
    result = cli("cancel", common)
    assert result.exit_code == 2
    # Four of the six are listed (ids made in one clock tick sort by their random part, so not always ids[0]).
    assert (
        "ambiguous" in result.stderr
        and sum(i in result.stderr for i in ids) == 4
        and "..." in result.stderr
    )
    assert all(_status(waiting, i) == "pending" for i in ids)


def test_the_random_end_of_a_generated_id_finds_it(waiting, cli) -> None:
    engine = waiting.engine()
    run_id = engine.start("wait", {}, detach=True)[0].id
    result = cli("status", run_id[-6:], "--json")
    assert result.exit_code == 5, result.stderr  # pending
    assert result.json()["workflow_id"] == run_id
    assert f"is run {run_id}" in result.stderr


def test_status_prefix_uses_a_range_on_the_primary_key(waiting) -> None:
    store = waiting.engine().store
    plan = " ".join(
        str(row[-1])
        for row in store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 5",
            ("order", "order\U0010ffff"),
        )
    )
    assert plan.startswith("SEARCH") and "sqlite_autoindex_runs_1" in plan, plan
    assert store.find_run_ids("order-1") == ["order-1", "order-12"]
    assert store.find_run_ids("pay%") == ["pay%2025"]
    assert store.find_run_ids("2024") == ["pay_2024"]
