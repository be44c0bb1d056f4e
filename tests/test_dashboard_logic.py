"""The dashboard's pure logic under Node: timeline rows from a real run, version diffs equal to
`define`'s, graph nodes from a compiled definition. (The pages themselves: tests/browser.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import Project
from tests.services import need

SCRIPT = Path(__file__).resolve().parent / "web" / "dashboard_logic.mjs"


def in_node(payload: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    need("Node.js", node is not None, "no `node` on PATH")
    assert node is not None
    done = subprocess.run(
        [node, "--experimental-default-type=module", "--no-warnings", str(SCRIPT)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


FLAKY = """
from ductape_cli import workflow

CALLS = {"b": 0}


def b():
    CALLS["b"] += 1
    if CALLS["b"] < 3:
        raise RuntimeError(f"attempt {CALLS['b']}")
    return {"b": CALLS["b"]}


def c():
    raise ValueError("c breaks")


@workflow("flaky", rollback_strategy="reverse_all")
async def flaky(ctx):
    await ctx.step("a", lambda: {"a": 1}, rollback=lambda out: None)
    await ctx.step("b", b, retries=3)
    await ctx.checkpoint("halfway", {})
    await ctx.step("c", c, rollback=lambda out: None)
"""


def test_timeline_rows_show_each_attempt_and_the_compensations(project: Project) -> None:
    from ductape_cli.server.views import execution

    project.write("flaky", FLAKY)
    engine = project.engine()
    try:
        run_id = engine.run("flaky", {})["workflow_id"]
        view, events = execution(engine.status(run_id)), engine.history(run_id)
    finally:
        engine.close()
    assert view["status"] == "rolled_back"
    rows = in_node({"timeline": [[view, events]]})["timeline"][0]
    assert rows == [
        {"kind": "step", "label": "a", "status": "rolled_back", "segments": ["rolled_back"]},
        {
            "kind": "step",
            "label": "b",
            "status": "completed",
            "segments": ["failed", "failed", "completed"],
        },
        {"kind": "checkpoint", "label": "⚑ halfway", "status": "completed", "segments": []},
        {"kind": "step", "label": "c", "status": "failed", "segments": ["failed"]},
        {
            "kind": "compensation",
            "label": "↺ undo a",
            "status": "rolled_back",
            "segments": ["rolled_back"],
        },
    ]


def test_version_changes_match_what_define_reports() -> None:
    from ductape_cli.definitions import diff_schemas

    old = {
        "name": "Orders",
        "options": {"timeout_ms": None, "signals": {"ok": {"by": "string"}}},
        "steps": [
            {"tag": "a", "options": {"retries": 1}, "has_rollback": False, "condition": None},
            {"tag": "b", "options": {}, "has_rollback": False},
        ],
        "operations": [
            {"kind": "step", "tag": "a"},
            {"kind": "sleep", "duration_ms": 5000, "source": "x.py:3"},
        ],
    }
    new = {
        "name": "Orders v2",
        "options": {"timeout_ms": 60000, "signals": {"ok": {"by": "string"}}},
        "steps": [
            {
                "tag": "a",
                "options": {"retries": 3, "retry_delay_ms": 0},
                "has_rollback": True,
                "condition": "$Input{x} == 1",
            },
            {"tag": "c", "options": {}, "has_rollback": False},
        ],
        "operations": [
            {"kind": "step", "tag": "a"},
            {"kind": "sleep", "duration_ms": 5000, "source": "x.py:9"},
        ],
    }
    pairs = [[old, new], [new, old], [old, old]]
    answers = in_node({"diff": pairs})["diff"]
    for (before, after), js in zip(pairs, answers, strict=True):
        python = diff_schemas(before, after).to_dict()
        assert {k: js[k] for k in ("added", "removed", "changed", "options")} == {
            k: python[k] for k in ("added", "removed", "changed", "options")
        }
        assert bool(js["operations"]) == bool(python["operations"])  # a moved line is not a change
    assert answers[0]["changed"] == {
        "a": ["has_rollback", "condition", "retries", "retry_delay_ms"]
    }


def test_graph_nodes_follow_the_compiled_operations(
    project: Project, cli: Callable[..., Any]
) -> None:
    project.write(
        "orders",
        """
        from ductape_cli import workflow

        @workflow("orders", signals={"approved": {}}, branch_overrides={"check": {"ok": True}})
        async def orders(ctx):
            check = await ctx.step("check", lambda: {"ok": True})
            if not check["ok"]:
                return None
            await ctx.step("charge", lambda: 1, rollback=lambda out: None, critical=True)
            await ctx.sleep("2m")
            await ctx.wait_for_signal(["approved"], timeout="1h")
            await ctx.workflow("child-1", "orders", {})
        """,
    )
    assert cli("define").exit_code == 0
    schema = cli("show", "orders", "--json").json()["schema"]
    nodes = in_node({"graph": [schema]})["graph"][0]
    cond = "$Step{check}{ok} == true"
    assert [(n["kind"], n["label"], n["condition"]) for n in nodes] == [
        ("step", "check", None),
        ("step", "charge", cond),
        ("sleep", "◷ sleep 2m 0s", cond),
        ("signal", "✉ wait for approved", cond),
        ("child", "⎘ child orders", cond),
    ]
    assert nodes[1]["marks"] == ["↺ rollback", "critical"]
    assert nodes[3]["marks"] == ["timeout 1h 0m"]
