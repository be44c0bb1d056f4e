"""kill -9 in the middle of a rollback: resume finishes it and no compensation runs twice."""

from __future__ import annotations

import json
import signal
from collections import Counter

from tests.process.helpers import lines, run, spawn, wait_for

FIVE_COMPENSATIONS = """
    import os, time
    from pathlib import Path
    from ductape_cli import workflow

    ROOT = Path(os.environ.get("DUCTAPE_PROJECT", "."))

    def record(line):
        with (ROOT / "effects.log").open("a") as f:
            f.write(line + "\\n")
            f.flush()
            os.fsync(f.fileno())

    def compensate(n):
        def undo(output):
            if n == 3 and (ROOT / "block").exists():
                record("blocked-before-undo-3")
                time.sleep(60)          # the test kills us here: after the second compensation
            record(f"undo-{n}")
        return undo

    def fail():
        raise RuntimeError("step 6 failed")

    @workflow("five-compensations")
    async def five(ctx):
        for n in range(1, 6):
            await ctx.step(f"step-{n}", lambda n=n: record(f"do-{n}") or n, compensate(n))
        await ctx.step("step-6", fail)
"""


def test_sigkill_during_rollback_then_resume_finishes_it_once(project, durability_report) -> None:
    project.write("five", FIVE_COMPENSATIONS)
    (project.root / "block").write_text("")
    effects = project.root / "effects.log"
    proc = spawn(project.root, "run", "five-compensations", "--workflow-id", "rb", "--json")
    wait_for(lambda: "blocked-before-undo-3" in lines(effects), what="the third compensation")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    (project.root / "block").unlink()
    assert [line for line in lines(effects) if line.startswith("undo")] == ["undo-5", "undo-4"]

    resumed = run(project.root, "resume", "rb", "--json")
    result = json.loads(resumed.stdout)
    assert resumed.returncode == 3, resumed.stderr
    assert result["status"] == "rolled_back"
    assert result["rollback_result"]["rolled_back_steps"] == [
        "step-5",
        "step-4",
        "step-3",
        "step-2",
        "step-1",
    ]
    counts = Counter(lines(effects))
    assert all(counts[f"do-{n}"] == 1 for n in range(1, 6)), counts
    assert all(counts[f"undo-{n}"] == 1 for n in range(1, 6)), counts
    history = run(project.root, "history", "rb", "--json")
    events = json.loads(history.stdout)["events"]
    assert sum(1 for e in events if e["type"] == "step_rolled_back") == 5
    assert sum(1 for e in events if e["type"] == "rollback_started") == 1
    durability_report("rollback crash test: compensations=5 kills=1 repeated=0")
