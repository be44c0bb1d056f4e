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
SCHEMA: dict[str, Any] = {
    "source_file": "/elsewhere/pay.py",
    "source_line": 3,
    "steps": [
        {
            "tag": "a",
            "condition": "$Input{x} == 1",
            "has_rollback": True,
            "critical": True,
            "allow_fail": True,
            "dynamic": True,
            "source": "/elsewhere/pay.py:5",
            "options": {
                "retries": 2,
                "retry_delay_ms": 100,
                "backoff": 2.0,
                "max_delay_ms": 900,
                "timeout_ms": 50,
                "on_error": "x",
                "input": {},
            },
        },
        {"tag": "b", "parallel": "g1"},
        {"tag": "c", "parallel": "g1"},
    ],
    "operations": [
        {"kind": "step", "tag": "a"},
        {"kind": "step", "tag": "b", "parallel": "g1"},
        {"kind": "sleep", "duration_ms": 5000, "condition": "$Input{y}", "source": "x.py:9"},
        {"kind": "step", "tag": "c", "parallel": "g1"},
        {"kind": "checkpoint", "name": "done"},
    ],
    "recording_error": "boom",
    "incomplete": ["loop"],
    "warnings": ["careful\nnow"],
    "options": {
        "rollback_strategy": "all",
        "product": "shop",
        "timeout_ms": 60_000,
        "envs": [{"slug": "prd"}, {"slug": "dev", "active": False}],
        "signals": ["go"],
        "queries": ["progress"],
    },
}
DEFINITION_CASES: list[dict[str, Any]] = [
    {
        "tag": "pay",
        "name": "Pay",
        "version": "0123456789abcdef",
        "schema": SCHEMA,
        "created_at": 1_700_000_000.0,
        "versions": ["a", "b"],
    },
    {"tag": "pay", "name": "pay", "version": "v1", "schema": {"options": {}}},
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
    + [("compare", c) for c in COMPARE_CASES]
    + [("definition", c) for c in DEFINITION_CASES],
)
def test_plain_view_says_what_the_terminal_view_says(view: str, data: Any) -> None:
    assert plain_lines(view, data) == flatten(rich_view(view, data))
