"""A store shared by two projects: each sees and executes only its own runs (item 9)."""

from __future__ import annotations

import json
import sqlite3
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ductape_cli.store import open_store
from ductape_cli.store.migrations import MIGRATIONS, NAMESPACE_MIGRATION
from tests.conftest import CliResult, invoke_cli

CODE = """
    from ductape_cli import workflow

    @workflow("pay")
    async def pay(ctx):
        return await ctx.step("charge", lambda: "{who}")
"""


def _project(root: Path, name: str, store: Path, extra: str = "") -> Path:
    (root / "workflows").mkdir(parents=True)
    (root / "ductape.toml").write_text(f'[project]\nname = "{name}"\nstore = "{store}"\n{extra}')
    (root / "workflows" / "pay.py").write_text(textwrap.dedent(CODE.format(who=name)))
    return root


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """`ductape ARGS...` in the project at `root` (each call imports that project's workflows afresh)."""
    monkeypatch.delenv("DUCTAPE_STORE", raising=False)
    monkeypatch.delenv("DUCTAPE_PROJECT", raising=False)

    def in_project(root: Path, *args: str) -> CliResult:
        monkeypatch.chdir(root)
        return invoke_cli(*args)

    return in_project


def test_two_projects_on_one_store_never_touch_each_others_runs(
    tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    shared = tmp_path / "shared" / "state.db"
    a = _project(tmp_path / "a", "shop-a", shared)
    b = _project(tmp_path / "b", "shop-b", shared)
    started = run_cli(a, "run", "pay", "--detach", "--json")
    assert started.exit_code == 5, started.stderr
    run_id = json.loads(started.stdout)["workflow_id"]

    assert run_cli(b, "worker", "--once").exit_code == 0
    assert json.loads(run_cli(b, "list", "--json").stdout) == []
    for args in (
        ("status", run_id),
        ("cancel", run_id),
        ("signal", run_id, "go"),
        ("status", run_id[-6:]),
    ):
        refused = run_cli(b, *args)
        assert refused.exit_code == 2 and "no run with id" in refused.stderr, (
            args,
            refused.stderr,
        )
    assert json.loads(run_cli(a, "status", run_id, "--json").stdout)["status"] == "pending"

    assert run_cli(a, "worker", "--once").exit_code == 0
    done = json.loads(run_cli(a, "status", run_id, "--json").stdout)
    assert done["status"] == "completed" and done["output"] == "shop-a"  # A's code, never B's

    # B's own run of the same tag runs B's code; each project lists only its own.
    mine = json.loads(run_cli(b, "run", "pay", "--json").stdout)
    assert mine["output"] == "shop-b"
    assert [r["workflow_id"] for r in json.loads(run_cli(a, "list", "--json").stdout)] == [run_id]
    assert [r["workflow_id"] for r in json.loads(run_cli(b, "list", "--json").stdout)] == [
        mine["workflow_id"]
    ]


def test_an_explicit_namespace_shares_runs_between_two_folders(
    tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    shared = tmp_path / "state.db"
    one = _project(tmp_path / "one", "api", shared, 'namespace = "orders"\n')
    two = _project(tmp_path / "two", "worker-host", shared, 'namespace = "orders"\n')
    run_id = json.loads(run_cli(one, "run", "pay", "--detach", "--json").stdout)["workflow_id"]
    assert run_cli(two, "worker", "--once").exit_code == 0
    assert json.loads(run_cli(one, "status", run_id, "--json").stdout)["status"] == "completed"


def test_runs_from_before_namespaces_belong_to_the_first_project_that_opens_the_store(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    old_version = MIGRATIONS.index(NAMESPACE_MIGRATION)
    with sqlite3.connect(path) as conn:
        for statement in MIGRATIONS[:old_version]:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {old_version}")
        conn.execute(
            "INSERT INTO runs (id, tag, status, input, created_at) VALUES ('wf_old', 'pay', 'completed', '{}', ?)",
            (time.time(),),
        )
        conn.execute(
            "INSERT INTO definitions (tag, version, schema, created_at) VALUES ('pay', 'v1', '{}', 0)"
        )
    first = open_store(str(path), namespace="shop-a")
    assert first.get_run("wf_old") is not None and first.latest_definition("pay") is not None
    first.close()
    other = open_store(str(path), namespace="shop-b")
    assert other.get_run("wf_old") is None and other.latest_definition("pay") is None
    assert open_store(str(path), namespace="shop-a").get_run("wf_old") is not None


def test_topic_logs_and_quota_buckets_are_per_project(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    a, b = open_store(path, namespace="shop-a"), open_store(path, namespace="shop-b")
    assert a.append_message("events", "orders", {"n": 1}, None, time.time()) == 0
    assert b.append_message("events", "orders", {"n": 2}, None, time.time()) == 0  # its own offsets
    assert [m["message"] for m in a.read_messages("events", "orders")] == [{"n": 1}]
    assert [t["messages"] for t in b.list_topics()] == [1]
    now = time.time()
    assert a.take_quota("api", "k", 1, 60, now)[0] and not a.take_quota("api", "k", 1, 60, now)[0]
    assert b.take_quota("api", "k", 1, 60, now)[0]  # another project's bucket is untouched


def test_a_hook_token_of_another_project_is_unknown(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    a, b = open_store(path, namespace="shop-a"), open_store(path, namespace="shop-b")
    from tests.test_store import make_run

    a.create_run(make_run(), [])
    a.create_hook("tok", "wf_1", 0, "approve", None, time.time())
    assert b.deliver_hook("tok", {}, time.time()) == (None, "", "unknown hook token")
    assert a.signals("wf_1") == [] and b.signals("wf_1") == []
    run, name, refusal = a.deliver_hook("tok", {"ok": True}, time.time())
    assert refusal is None and name == "approve" and len(a.signals("wf_1")) == 1
