"""kill -9 under `durability = "full"` after the WAL has started over: every committed step is there."""

from __future__ import annotations

import json
import signal
from collections import Counter

from tests.process.helpers import lines, run, spawn, wait_for

# Each step's output spans a few pages, so the 149 steps before the kill write ~800 WAL frames:
# past FULL_AUTOCHECKPOINT_PAGES (256), where the store checkpoints and starts the WAL over.
MANY_STEPS = """
    import os, time
    from pathlib import Path
    from ductape_cli import workflow

    ROOT = Path(os.environ.get("DUCTAPE_PROJECT", "."))
    LOG = ROOT / "effects.log"
    BLOCK = ROOT / "block"

    def effect(n):
        with LOG.open("a") as f:
            f.write(f"step-{n}\\n")
        if n == 150 and BLOCK.exists():
            time.sleep(60)          # the test kills us here, after step 149 committed
        return {"n": n, "pad": "x" * 8000}

    @workflow("many-steps")
    async def many_steps(ctx):
        total = 0
        for n in range(1, 161):
            out = await ctx.step(f"step-{n}", lambda n=n: effect(n))
            total += out["n"]
        return {"total": total}
"""


def test_sigkill_under_full_durability_after_the_wal_started_over(
    project, durability_report
) -> None:
    config = project.root / "ductape.toml"
    config.write_text(
        config.read_text().replace(
            'default_env = "dev"\n', 'default_env = "dev"\ndurability = "full"\n'
        )
    )
    project.write("many", MANY_STEPS)
    (project.root / "block").write_text("")
    effects = project.root / "effects.log"
    proc = spawn(project.root, "run", "many-steps", "--workflow-id", "full-crash", "--json")
    wait_for(lambda: "step-150" in lines(effects), timeout=60, what="step 150 to start")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    (project.root / "block").unlink()

    wal = project.store.with_name("state.db-wal")
    if wal.exists():  # SQLite: 3.4 MB had the WAL only grown; starting over keeps it near 1 MB
        assert wal.stat().st_size < 1_500_000
    engine = project.engine()
    assert engine.status("full-crash")["completed_steps"] == [f"step-{n}" for n in range(1, 150)]

    resumed = run(project.root, "resume", "full-crash", "--json")
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["status"] == "completed"
    assert result["output"] == {"total": sum(range(1, 161))}
    counts = Counter(lines(effects))
    assert all(counts[f"step-{n}"] == 1 for n in range(1, 150)), counts
    assert counts["step-150"] == 2  # it was running when the process died
    assert all(counts[f"step-{n}"] == 1 for n in range(151, 161)), counts
    durability_report("full-durability crash test: steps=160 kills=1 re-executed=['step-150']")
