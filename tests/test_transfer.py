"""Take a CI run home: `ductape export` → `ductape import` into another store, and everything still works there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FAMILY = """
    from ductape_cli import workflow

    def undo(value):
        return None

    @workflow("parcel")
    async def parcel(ctx):
        label = await ctx.step("label", lambda: {"label": "L-" + ctx.input.sku})
        return label

    @workflow("shop", signals={"approve": {"by": "string"}})
    async def shop(ctx):
        price = await ctx.step("price", lambda: {"amount": 42}, rollback=undo)
        await ctx.checkpoint("priced", price)
        approval = await ctx.wait_for_signal("approve")
        label = await ctx.workflow("parcel-" + ctx.workflow_id, "parcel", {"sku": ctx.input.sku})
        ctx.log.info("shipping", {"label": label["label"]})
        await ctx.step("ship", lambda: {"shipped": True, "by": approval["by"]})
        return {"label": label, "by": approval["by"]}
"""


@pytest.fixture
def shop(project, cli):
    project.write("shop", FAMILY)
    run_id = cli("run", "shop", "--input", '{"sku": "A1"}', "--json").json()["workflow_id"]
    done = cli("signal", run_id, "approve", "--data", '{"by": "mgr"}', "--json")
    assert done.exit_code == 0, done.stdout
    return run_id


def export_to(cli, run_id: str, path: Path) -> dict:
    result = cli("export", run_id)
    assert result.exit_code == 0, result.stderr
    path.write_text(result.stdout, encoding="utf-8")
    return json.loads(result.stdout)


def without_ids(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in event.items() if k != "id"} for event in history]


def test_export_carries_the_run_its_family_and_definitions(shop, cli, tmp_path: Path) -> None:
    data = export_to(cli, shop, tmp_path / "run.json")
    assert data["format"] == "ductape-run-export" and data["workflow_id"] == shop
    ids = [bundle["runs"][0]["id"] for bundle in data["runs"]]
    assert ids == [shop, f"parcel-{shop}"]
    parent = data["runs"][0]
    assert [s["tag"] for s in parent["steps"]] == [
        "price",
        "priced",
        "approve",
        f"parcel-{shop}",
        "ship",
    ]
    assert parent["signals"][0]["payload"] == {"by": "mgr"}
    assert {e["type"] for e in parent["events"]} >= {
        "workflow_started",
        "signal_received",
        "child_started",
        "log",
    }
    assert sorted(d["tag"] for d in data["definitions"]) == ["parcel", "shop"]
    assert data["journal"] and data["events"]  # the history --json shape: replay_history reads it


def test_round_trip_into_another_store(shop, project, cli, tmp_path: Path, monkeypatch) -> None:
    original = {
        "status": cli("status", shop, "--json").json(),
        "history": cli("history", shop, "--json").json(),
        "child": cli("status", f"parcel-{shop}", "--json").json(),
    }
    export_to(cli, shop, tmp_path / "run.json")
    monkeypatch.setenv("DUCTAPE_STORE", str(tmp_path / "home.db"))
    imported = cli("import", str(tmp_path / "run.json"), "--json")
    assert imported.exit_code == 0, imported.stderr
    assert imported.json()["imported"] == [shop, f"parcel-{shop}"]
    status = cli("status", shop, "--json").json()
    assert status == original["status"]
    assert cli("status", f"parcel-{shop}", "--json").json() == original["child"]
    assert without_ids(cli("history", shop, "--json").json()["events"]) == without_ids(
        original["history"]["events"]
    )
    assert cli("related", shop, "--json").exit_code == 0
    # The testing kit checks today's code against the imported run, and against the file itself.
    from ductape_cli.testing.replayer import replay_history

    engine = project.engine()
    assert engine.store_path == str(tmp_path / "home.db")
    replay_history(engine, shop).assert_ok()
    replay_history(engine, tmp_path / "run.json").assert_ok()
    # And it can be replayed as a new run here (it waits for its approval again).
    replayed = cli("replay", shop, "--json")
    assert replayed.exit_code == 5 and replayed.json()["replayed_from"] == shop


def test_taken_ids_are_refused_and_rename_gives_new_ones(
    shop, project, cli, tmp_path: Path
) -> None:
    export_to(cli, shop, tmp_path / "run.json")
    engine = project.engine()
    before = (engine.store.count_runs(), engine.store.count_events(shop))
    refused = cli("import", str(tmp_path / "run.json"))
    assert refused.exit_code == 2
    assert (
        refused.stderr
        == f"ductape: run {shop} (and 1 more) already exists in {project.store}; `ductape import --rename` imports under new ids\n"
    )
    assert (engine.store.count_runs(), engine.store.count_events(shop)) == before

    renamed = cli("import", str(tmp_path / "run.json"), "--rename", "--json").json()
    copy = f"{shop}-imported"
    assert renamed["renamed"] == {shop: copy, f"parcel-{shop}": f"parcel-{shop}-imported"}
    compared = cli("compare", shop, copy, "--json").json()
    assert (
        compared["input_diff"] == {}
        and compared["step_diffs"] == []
        and compared["output_diff"] == {}
    )
    assert all(not step["differs"] for step in compared["steps"])
    status = cli("status", copy, "--json").json()
    assert [c["workflow_id"] for c in status["children"]] == [f"parcel-{shop}-imported"]
    assert cli("status", f"parcel-{shop}-imported", "--json").json()["parent_id"] == copy
    again = cli("import", str(tmp_path / "run.json"), "--rename", "--json").json()
    assert again["workflow_id"] == f"{shop}-imported-2"


def test_an_unfinished_run_can_be_continued_after_import(
    project, cli, tmp_path: Path, monkeypatch
) -> None:
    project.write("shop", FAMILY)
    run_id = cli("run", "shop", "--input", '{"sku": "B2"}', "--json").json()["workflow_id"]
    export_to(cli, run_id, tmp_path / "waiting.json")
    monkeypatch.setenv("DUCTAPE_STORE", str(tmp_path / "home.db"))
    assert cli("import", str(tmp_path / "waiting.json")).exit_code == 0
    done = cli("signal", run_id, "approve", "--data", '{"by": "me"}', "--json")
    assert done.exit_code == 0 and done.json()["output"]["by"] == "me"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file {path} not found"),
        (
            "{nope",
            "{path} is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2",
        ),
        (
            '{"workflow_id": "x"}',
            "{path} is not a ductape export (make one with `ductape export ID > run.json`)",
        ),
        (
            '{"format": "ductape-run-export", "format_version": 9}',
            "{path} has export format version 9; this ductape reads 1",
        ),
        (
            '{"format": "ductape-run-export", "format_version": 1, "runs": [{"runs": []}]}',
            "{path} is damaged: each exported run needs exactly one run row with an id",
        ),
        (
            '{"format": "ductape-run-export", "format_version": 1, "runs": [{"runs": [{"id": "wf_x", "tag": "t", "status": "completed", "input": {}, "created_at": 0, "evil) --": 1}]}]}',
            "cannot import: unknown runs column(s) evil) --",
        ),
    ],
)
def test_bad_import_files(project, cli, tmp_path: Path, content, message) -> None:
    path = tmp_path / "in.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = cli("import", str(path))
    assert result.exit_code == 2
    assert result.stderr == f"ductape: {message.format(path=path)}\n"
    if project.store.exists():
        assert project.engine().store.count_runs() == 0


def test_export_of_an_unknown_run(project, cli) -> None:
    result = cli("export", "wf_missing")
    assert result.exit_code == 2 and result.stderr.startswith(
        "ductape: no run with id 'wf_missing'"
    )
