"""A compensation that failed, then a kill while `resume` retries it: it succeeds exactly once."""

from __future__ import annotations

import json
import signal
from collections import Counter

from tests.process.helpers import lines, run, spawn, wait_for

REFUND_FLOW = """
    import os, time
    from pathlib import Path
    from ductape_cli import workflow

    ROOT = Path(os.environ.get("DUCTAPE_PROJECT", "."))

    def record(line):
        with (ROOT / "effects.log").open("a") as f:
            f.write(line + "\\n")
            f.flush()
            os.fsync(f.fileno())

    def refund(out):
        record("REFUND-ATTEMPT")
        if (ROOT / "provider-down").exists():
            raise RuntimeError("payment provider down")
        if (ROOT / "block").exists():
            record("REFUND-BLOCKED")
            time.sleep(60)          # the test kills us here, inside the retried compensation
        record("REFUND " + out["id"])

    def ship():
        record("SHIP")
        raise RuntimeError("carrier down")

    @workflow("refund-flow")
    async def refund_flow(ctx):
        await ctx.step("reserve", lambda: record("RESERVE") or {"r": 1}, lambda out: record("RELEASE"))
        await ctx.step("charge", lambda: record("CHARGE") or {"id": "ch_7"}, refund,
                       rollback_retries=1, rollback_retry_delay="20ms")
        await ctx.step("ship", ship)
"""


def test_failed_compensation_resumed_killed_and_resumed_again_refunds_once(
    project, durability_report
) -> None:
    project.write("refund", REFUND_FLOW)
    effects = project.root / "effects.log"
    (project.root / "provider-down").write_text("")
    first = run(project.root, "run", "refund-flow", "--workflow-id", "rf", "--json")
    assert first.returncode == 1, first.stderr
    assert json.loads(first.stdout)["rollback_result"]["failed_steps"][0]["tag"] == "charge"
    assert Counter(lines(effects))["REFUND-ATTEMPT"] == 2  # the first try and one retry

    (project.root / "provider-down").unlink()
    (project.root / "block").write_text("")
    proc = spawn(project.root, "resume", "rf", "--json")
    wait_for(lambda: "REFUND-BLOCKED" in lines(effects), what="the retried compensation")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    (project.root / "block").unlink()

    resumed = run(project.root, "resume", "rf", "--json")
    assert resumed.returncode == 3, resumed.stdout + resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["rollback_result"] == {
        "rolled_back_steps": ["charge", "reserve"],
        "failed_steps": [],
    }
    counts = Counter(lines(effects))
    assert counts["REFUND ch_7"] == 1 and counts["RELEASE"] == 1, counts
    assert counts["RESERVE"] == counts["CHARGE"] == counts["SHIP"] == 1, counts
    durability_report(f"compensation retry crash test: kills=1 refunds={counts['REFUND ch_7']}")
