"""8 processes start the same workflow with the same idempotency key at once: one run."""

from __future__ import annotations

import json

from tests.process.helpers import spawn


def test_eight_processes_one_key_one_run(project, durability_report) -> None:
    project.write(
        "once",
        """
        from ductape_cli import workflow

        @workflow("once")
        async def once(ctx):
            return await ctx.step("only", lambda: {"ok": True})
    """,
    )
    procs = [
        spawn(project.root, "run", "once", "--idempotency-key", "order-42", "--json")
        for _ in range(8)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    ids = set()
    for (stdout, stderr), proc in zip(outputs, procs, strict=True):
        assert proc.returncode in (0, 5), stderr
        ids.add(json.loads(stdout)["workflow_id"])
    assert len(ids) == 1
    runs = project.engine().list_runs()
    assert len(runs) == 1 and runs[0].id in ids
    durability_report(f"idempotency race: processes=8 runs=1 ids_reported={len(ids)}")
