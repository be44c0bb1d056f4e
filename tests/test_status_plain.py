"""`ductape status` to a pipe prints the terminal view's words without importing rich (issue 19)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from ductape_cli.render.flatten import flatten
from ductape_cli.render.status_parts import status_lines
from ductape_cli.render.views import status_view

STEP = {"kind": "step", "tag": "charge", "status": "completed", "duration": 12, "attempts": 1}
CASES: list[dict[str, Any]] = [
    {"status": "completed", "output": {"ok": True}, "steps": [STEP]},
    {
        "status": "failed",
        "error": {"message": "card declined\nsecond line", "step": "charge", "code": "STEP_FAILED"},
        "steps": [
            {
                **STEP,
                "status": "failed",
                "attempts": 3,
                "critical": True,
                "error": {"message": "declined"},
            },
            {"kind": "step", "tag": "ship", "status": "skipped", "reason": "not reached"},
        ],
    },
    {
        "status": "rolled_back",
        "rollback_result": {
            "rolled_back_steps": ["charge"],
            "failed_steps": [{"tag": "reserve", "error": "gone"}],
        },
        "steps": [
            {**STEP, "has_rollback": True, "rollback_status": "completed"},
            {
                **STEP,
                "tag": "reserve",
                "has_rollback": True,
                "rollback_status": "failed",
                "rollback_error": "gone",
            },
            {"kind": "step", "tag": "opt", "status": "skipped", "error": {"message": "flaky"}},
            {
                "kind": "step",
                "tag": "cond",
                "status": "skipped",
                "options": {"skip": {"condition": "$Input{x} == 1"}},
            },
        ],
    },
    {
        "status": "running",
        "started_at": 1.0,
        "waiting": {"detail": "signal approved"},
        "children": [{"workflow_id": "wf_child", "status": "completed"}],
        "replayed_from": "wf_old",
        "parent_id": "wf_p",
        "metadata": {"b": 1, "a": "x"},
        "steps": [
            {
                "kind": "sleep",
                "tag": "nap",
                "status": "completed",
                "options": {"duration_ms": 60_000},
            },
            {"kind": "signal", "tag": "approved", "status": "waiting"},
            {"kind": "checkpoint", "tag": "cp", "status": "completed"},
            {"kind": "child", "tag": "sub", "status": "running"},
        ],
    },
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["status"])
def test_plain_status_says_what_the_terminal_view_says(case: dict[str, Any]) -> None:
    info = {"workflow_tag": "order", "workflow_id": "wf_1", "execution_time": 1234, **case}
    assert status_lines(info) == flatten(status_view(info))


def test_piped_status_imports_no_rich(project: Any) -> None:
    project.write(
        "job",
        """
        from ductape_cli import workflow

        @workflow("job")
        async def job(ctx):
            return await ctx.step("a", lambda: 1)
    """,
    )
    engine = project.engine()
    run_id = engine.run("job", {}).workflow_id
    engine.close()
    probe = (
        "import sys; sys.argv = ['ductape', 'status', sys.argv[1]]\n"
        "from ductape_cli.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in ('rich', 'asyncio', 'ssl') if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, run_id],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "status: completed" in done.stdout and f"run: {run_id}" in done.stdout
    assert "LOADED []" in done.stderr, done.stderr
