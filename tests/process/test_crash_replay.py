"""kill -9 while `replay --from-step` seeds its new run: the run and its copied journal appear together or not at all."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter

from tests.conftest import ductape_subprocess_env
from tests.process.helpers import lines, run, wait_for

CHARGE_THEN_SHIP = """
    import os
    from pathlib import Path
    from ductape_cli import workflow

    ROOT = Path(os.environ.get("DUCTAPE_PROJECT", "."))

    def record(line, fail_flag=None):
        with (ROOT / "effects.log").open("a") as f:
            f.write(line + "\\n")
            f.flush()
            os.fsync(f.fileno())
        if fail_flag and (ROOT / fail_flag).exists():
            raise RuntimeError(line + " failed")
        return {"line": line}

    @workflow("charge-then-ship", rollback_strategy="none")
    async def charge_then_ship(ctx):
        await ctx.step("charge", lambda: record("CHARGE"))
        await ctx.step("ship", lambda: record("SHIP", "carrier-down"))
        return "shipped"
"""


def test_sigkill_right_after_the_replay_run_is_created_never_recharges(
    project, durability_report
) -> None:
    project.write("charge", CHARGE_THEN_SHIP)
    effects = project.root / "effects.log"
    (project.root / "carrier-down").write_text("")
    first = run(project.root, "run", "charge-then-ship", "--workflow-id", "orig", "--json")
    assert first.returncode == 1, first.stderr
    (project.root / "carrier-down").unlink()

    marker = project.root / "created"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.process.pause_after",
            "create_run",
            str(marker),
            "--",
            "replay",
            "orig",
            "--from-step",
            "ship",
            "--json",
        ],
        cwd=project.root,
        env=ductape_subprocess_env(project.root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for(lambda: marker.exists(), what="the replay run to be created")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    worker = run(project.root, "worker", "--once")
    assert worker.returncode == 0, worker.stderr
    runs = json.loads(run(project.root, "list", "--json").stdout)
    replays = [r for r in runs if r["workflow_id"] != "orig"]
    assert len(replays) == 1
    replay = json.loads(run(project.root, "status", replays[0]["workflow_id"], "--json").stdout)
    assert replay["status"] == "completed", replay
    counts = Counter(lines(effects))
    assert counts["CHARGE"] == 1, counts  # the copied charge was never run again
    assert counts["SHIP"] == 2, counts
    durability_report(f"replay seeding crash test: kills=1 recharges={counts['CHARGE'] - 1}")
