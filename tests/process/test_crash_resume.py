"""kill -9 in the middle of a run, then `ductape resume`: nothing lost, nothing recorded twice."""

from __future__ import annotations

import json
import signal
from collections import Counter

from tests.process.helpers import lines, run, spawn, wait_for

TEN_STEPS = """
    import os, time
    from pathlib import Path
    from ductape_cli import workflow

    LOG = Path(os.environ.get("DUCTAPE_PROJECT", ".")) / "effects.log"
    BLOCK = Path(os.environ.get("DUCTAPE_PROJECT", ".")) / "block"

    def effect(n):
        with LOG.open("a") as f:
            f.write(f"step-{n}\\n")
            f.flush()
            os.fsync(f.fileno())
        if n == 5 and BLOCK.exists():
            time.sleep(60)          # the test kills us here, after step 4 committed
        return {"n": n}

    @workflow("ten-steps")
    async def ten_steps(ctx):
        outputs = []
        for n in range(1, 11):
            out = await ctx.step(f"step-{n}", lambda n=n: effect(n))
            outputs.append(out["n"])
        return {"outputs": outputs}
"""


def test_sigkill_after_step_4_then_resume_finishes_exactly(project, durability_report) -> None:
    project.write("ten", TEN_STEPS)
    (project.root / "block").write_text("")
    effects = project.root / "effects.log"
    proc = spawn(project.root, "run", "ten-steps", "--workflow-id", "crashy", "--json")
    wait_for(lambda: "step-5" in lines(effects), what="step 5 to start")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    (project.root / "block").unlink()

    engine = project.engine()
    before = engine.status("crashy")
    assert before["status"] == "running"
    assert before["completed_steps"] == [f"step-{n}" for n in range(1, 5)]

    resumed = run(project.root, "resume", "crashy", "--json")
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["status"] == "completed"
    assert result["output"] == {"outputs": list(range(1, 11))}

    counts = Counter(lines(effects))
    assert all(counts[f"step-{n}"] == 1 for n in range(1, 5)), (
        counts
    )  # committed steps never re-ran
    assert counts["step-5"] == 2  # at least once: it was running when the process died
    assert all(counts[f"step-{n}"] == 1 for n in range(6, 11)), counts
    journal = engine.store.load_journal("crashy")
    assert sorted(r.tag for r in journal.values()) == sorted(f"step-{n}" for n in range(1, 11))
    completions = [e for e in engine.history("crashy") if e["type"] == "step_completed"]
    assert len(completions) == 10  # each completion recorded exactly once
    durability_report("crash test: steps=10 kills=1 re-executed=['step-5'] duplicates_recorded=0")


def test_resume_refuses_a_run_whose_owner_is_alive(project) -> None:
    project.write("ten", TEN_STEPS)
    (project.root / "block").write_text("")
    effects = project.root / "effects.log"
    proc = spawn(project.root, "run", "ten-steps", "--workflow-id", "alive", "--json")
    try:
        wait_for(lambda: "step-5" in lines(effects), what="step 5 to start")
        result = run(project.root, "resume", "alive")
        assert result.returncode == 2
        assert "being executed by live process" in result.stderr
    finally:
        proc.kill()
        proc.wait(timeout=10)
