"""`ductape signal` to a run whose owner died mid-step takes it over, as `cancel` does (item 7)."""

from __future__ import annotations

import json
import signal

from tests.process.helpers import lines, spawn, wait_for
from tests.process.helpers import run as run_cli

SAMPLE = """
    import os, time
    from pathlib import Path
    from ductape_cli import workflow

    LOG = Path(os.environ.get("DUCTAPE_PROJECT", ".")) / "effects.log"

    def slow():
        with LOG.open("a") as f:
            f.write(f"slow {os.getpid()}\\n")
        time.sleep(0.5 if LOG.read_text().count("slow") > 1 else 60)
        return "slept"

    @workflow("gate", signals={"go": {}})
    async def gate(ctx):
        await ctx.step("slow", slow)
        got = await ctx.wait_for_signal("go")
        return {"got": got}
"""


def test_signal_takes_over_a_run_whose_owner_died_mid_step(project) -> None:
    project.write("gate", SAMPLE)
    effects = project.root / "effects.log"
    owner = spawn(project.root, "run", "gate", "--workflow-id", "gate-1")
    wait_for(lambda: len(lines(effects)) == 1, timeout=60, what="the step to start")
    owner.send_signal(signal.SIGKILL)
    owner.communicate(timeout=30)

    status = run_cli(project.root, "status", "gate-1", "--json")
    waiting = json.loads(status.stdout)["waiting"]
    assert waiting["kind"] == "orphaned" and "died" in waiting["detail"], waiting

    result = run_cli(project.root, "signal", "gate-1", "go", "--data", '{"n": 1}', "--json")
    assert result.returncode == 0, (result.stdout, result.stderr)
    data = json.loads(result.stdout)
    assert data["status"] == "completed" and data["output"] == {"got": {"n": 1}}
    assert (
        len(lines(effects)) == 2
    )  # the interrupted step ran again (at least once), then the signal
