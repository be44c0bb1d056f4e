"""Piped `step`, `workflows`, `related` and `compare` print the terminal views' words without rich (issue 19)."""

from __future__ import annotations

from typing import Any

import pytest

from ductape_cli.render.flatten import flatten
from ductape_cli.render.output import plain_lines, rich_view

STEP_CASES: list[dict[str, Any]] = [
    {"tag": "charge", "status": "completed", "attempts": 1, "duration": 12, "output": {"ok": 1}},
    {
        "tag": "charge",
        "status": "failed",
        "attempts": 3,
        "duration": None,
        "input": {"card": "x" * 300},
        "output": None,
        "error": {"message": "declined\nby bank", "code": "E"},
        "rollback_status": "failed",
        "options": {"retries": 2},
        "source": "workflows/pay.py:12",
        "attempt_log": [
            {"attempt": 1, "started_at": 1.5, "duration": 3, "error": {"message": "a\nb"}},
            {"attempt": 2, "started_at": None, "duration": None, "error": None},
        ],
    },
]
WORKFLOW_CASES: list[list[dict[str, Any]]] = [
    [],
    [
        {
            "tag": "pay",
            "name": "Pay",
            "version": "0123456789abcdef",
            "versions": 2,
            "steps": 3,
            "defined_at": 1_700_000_000.0,
        },
        {
            "tag": "ship",
            "name": None,
            "version": None,
            "versions": 1,
            "steps": 0,
            "defined_at": None,
        },
    ],
]
ENTRY = {
    "type": "original",
    "workflow_id": "wf_a",
    "status": "failed",
    "workflow_tag": "pay",
    "created_at": 1_700_000_000_000,
}
RELATED_CASES: list[dict[str, Any]] = [
    {"workflow_id": "wf_a", "executions": []},
    {
        "workflow_id": "wf_c",
        "executions": [
            {
                **ENTRY,
                "resumes": [
                    {
                        "timestamp": None,
                        "previous_status": "failed",
                        "from_step": "charge",
                        "skip": ["x", "y"],
                    }
                ],
            },
            {
                **ENTRY,
                "type": "replay",
                "workflow_id": "wf_b",
                "status": "completed",
                "replayed_from": "wf_a",
                "reason": "retry\nit " + "r" * 80,
            },
            {
                **ENTRY,
                "type": "restart",
                "workflow_id": "wf_c",
                "restarted_from": "wf_b",
                "from_step": "ship",
                "created_at": None,
            },
            {**ENTRY, "type": "child", "workflow_id": "wf_d", "parent_id": "wf_zz"},
        ],
    },
]
RUN = {"workflow_tag": "pay", "status": "completed", "execution_time": 120, "error": None}
COMPARE_CASES: list[dict[str, Any]] = [
    {
        "workflow_ids": ["wf_a", "wf_b"],
        "runs": {"wf_a": RUN, "wf_b": RUN},
        "input_diff": {},
        "output_diff": {},
        "step_diffs": [],
        "steps": [
            {
                "step": "s",
                "differs": False,
                "wf_a": {"status": "completed", "duration": 3},
                "wf_b": {"status": "completed", "duration": None},
            },
        ],
    },
    {
        "workflow_ids": ["wf_a", "wf_b"],
        "runs": {
            "wf_a": RUN,
            "wf_b": {**RUN, "status": "failed", "error": {"message": "boom\nline"}},
        },
        "input_diff": {"$": [None, {"n": 1}], "a.b": ["x", "y" * 100]},
        "output_diff": {"$": [{"k": 1}, None]},
        "step_diffs": [
            {"step": "s", "wf_a": {"output": {"v": 1}}, "wf_b": {"error": "bad\nthing"}},
        ],
        "steps": [
            {
                "step": "s",
                "differs": True,
                "wf_a": {"status": "completed", "duration": 3},
                "wf_b": {"status": "failed"},
            },
            {
                "step": "t",
                "differs": True,
                "wf_a": {"status": "completed"},
                "wf_b": {"status": "not_reached"},
            },
        ],
    },
]


@pytest.mark.parametrize(
    ("view", "data"),
    [("step", c) for c in STEP_CASES]
    + [("workflows", c) for c in WORKFLOW_CASES]
    + [("related", c) for c in RELATED_CASES]
    + [("compare", c) for c in COMPARE_CASES],
)
def test_plain_view_says_what_the_terminal_view_says(view: str, data: Any) -> None:
    assert plain_lines(view, data) == flatten(rich_view(view, data))
