"""Operating a live store: prune and backup while a worker process writes, metrics scraped over HTTP."""

from __future__ import annotations

import re
import signal
import socket
import sqlite3
import time
import urllib.request
from collections import Counter

from tests.process.helpers import lines, spawn, wait_for
from tests.process.helpers import run as run_cli

FLOWS = """
    import os
    import time
    from pathlib import Path
    from ductape_cli import workflow

    LOG = Path(os.environ.get("DUCTAPE_PROJECT", ".")) / "effects.log"

    def effect(line):
        with LOG.open("a") as f:
            f.write(line + "\\n")
            f.flush()
        return line

    def refund(_):
        effect("refund")

    @workflow("quick")
    async def quick(ctx):
        await ctx.step("one", lambda: effect(f"{ctx.workflow_id}:one"))
        await ctx.step("two", lambda: effect(f"{ctx.workflow_id}:two"))
        return "ok"

    @workflow("waiter")
    async def waiter(ctx):
        await ctx.step("before", lambda: effect(f"{ctx.workflow_id}:before"))
        await ctx.wait_for_signal("go")
        return await ctx.step("after", lambda: effect(f"{ctx.workflow_id}:after"))

    FLAKY = {}

    def flaky():
        FLAKY[0] = FLAKY.get(0, 0) + 1
        if FLAKY[0] < 2:
            raise RuntimeError("try again")
        return "fine"

    @workflow("bumpy", rollback_strategy="reverse_all")
    async def bumpy(ctx):
        await ctx.step("charge", lambda: "charged", rollback=refund)
        await ctx.step("flaky", flaky, retries=2, retry_delay="10ms")
        await ctx.step("boom", lambda: 1 / 0)

    @workflow("slow")
    def slow(ctx):
        ctx.step("mark", lambda: effect(f"{ctx.workflow_id}:mark"))
        ctx.step("long", lambda: time.sleep(60))
        return "done"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    return stderr


def test_prune_and_backup_while_a_worker_writes(project, durability_report) -> None:
    project.write("flows", FLOWS)
    engine = project.engine()
    old = [engine.run("quick", {})["workflow_id"] for _ in range(30)]
    for run_id in old:
        engine.store.set_run_fields(run_id, {"ended_at": time.time() - 3 * 86_400})
    waiting = [engine.start("waiter", {}, detach=True)[0].id for _ in range(3)]
    effects = project.root / "effects.log"
    effects.write_text("")
    worker = spawn(project.root, "worker", "--concurrency", "2", "--poll", "0.05")
    queued: list[str] = []
    try:
        wait_for(
            lambda: all(f"{w}:before" in lines(effects) for w in waiting),
            timeout=60,
            what="the waiters to start",
        )
        pruner = spawn(project.root, "prune", "--older-than", "1d", "--batch", "4", "--json")
        backup = spawn(project.root, "store", "backup", str(project.root / "backup.db"))
        for _ in range(20):  # the worker keeps executing new runs while prune and backup go
            queued.append(engine.start("quick", {}, detach=True)[0].id)
        pruned_out, pruned_err = pruner.communicate(timeout=120)
        backup_out, backup_err = backup.communicate(timeout=120)
        assert pruner.returncode == 0, pruned_err
        assert backup.returncode == 0, backup_err
        wait_for(
            lambda: all(engine.get_run(q).status == "completed" for q in queued),
            timeout=120,
            what="queued runs",
        )
        for w in waiting:
            assert run_cli(project.root, "signal", w, "go", "--no-wait", "--json").returncode == 5
        wait_for(
            lambda: all(engine.get_run(w).status == "completed" for w in waiting),
            timeout=60,
            what="waiters to finish",
        )
    finally:
        stderr = stop(worker)
    import json

    report = json.loads(pruned_out)
    assert sorted(report["runs"]) == sorted(old)
    assert all(engine.store.get_run(r) is None for r in old)
    counts = Counter(lines(effects))
    assert all(counts[f"{q}:{s}"] == 1 for q in queued for s in ("one", "two"))
    assert all(counts[f"{w}:{s}"] == 1 for w in waiting for s in ("before", "after"))
    assert "✗" not in stderr, stderr
    copy = sqlite3.connect(project.root / "backup.db")
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        backed_up = copy.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    finally:
        copy.close()
    assert (
        backed_up >= 3 + len(queued) - 20
    )  # a consistent snapshot from some moment during the writes
    durability_report(
        f"prune under a worker: pruned={report['count']} executed={len(queued) + len(waiting)} duplicates=0 backup_runs={backed_up}"
    )


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format (labels in any order)."""
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(3) or ""))
        if found == labels:
            return float(match.group(4))
    return None


def test_worker_metrics_scraped_over_http(project) -> None:
    project.write("flows", FLOWS)
    engine = project.engine()
    effects = project.root / "effects.log"
    # A `ductape run` killed mid-step leaves a run owned by a dead process: the worker takes it over.
    crashed = spawn(project.root, "run", "slow", "--json")
    wait_for(
        lambda: any(line.endswith(":mark") for line in lines(effects)),
        timeout=60,
        what="the slow run to start",
    )
    crashed.send_signal(signal.SIGKILL)
    crashed.wait(timeout=10)
    slow_id = lines(effects)[0].split(":")[0]
    port = free_port()
    worker = spawn(
        project.root, "worker", "--concurrency", "2", "--poll", "0.05", "--metrics-port", str(port)
    )
    try:
        wait_for(lambda: _answers(port), timeout=60, what="the metrics server")
        ids = [engine.start("quick", {}, detach=True)[0].id for _ in range(5)]
        bumpy = engine.start("bumpy", {}, detach=True)[0].id
        waiter = engine.start("waiter", {}, detach=True)[0].id
        wait_for(
            lambda: all(engine.get_run(i).status.terminal for i in [*ids, bumpy]),
            timeout=60,
            what="runs to end",
        )
        wait_for(
            lambda: (engine.get_run(waiter).waiting or {}).get("kind") == "signal",
            timeout=60,
            what="the waiter",
        )
        wait_for(
            lambda: (
                engine.get_run(slow_id).current_step == "long"
                and engine.get_run(slow_id).owner is not None
            ),
            timeout=60,
            what="the worker to adopt the crashed run",
        )
        text = scrape(port)
    finally:
        worker.kill()  # the adopted run sleeps in its step for a minute: no graceful stop to wait for
        worker.communicate(timeout=30)
    assert sample(text, "ductape_runs_started_total", workflow="quick") == 5
    assert sample(text, "ductape_runs_ended_total", workflow="quick", status="completed") == 5
    assert sample(text, "ductape_runs_ended_total", workflow="bumpy", status="rolled_back") == 1
    assert (
        sample(text, "ductape_step_duration_seconds_count", workflow="quick", status="completed")
        == 10
    )
    assert (
        sample(text, "ductape_step_duration_seconds_count", workflow="bumpy", status="failed") == 1
    )
    assert sample(text, "ductape_step_retries_total", workflow="bumpy") == 1
    assert sample(text, "ductape_compensations_total", workflow="bumpy", status="completed") == 1
    assert sample(text, "ductape_lease_takeovers_total", workflow="slow") == 1
    assert sample(text, "ductape_runs", state="waiting") == 1
    assert sample(text, "ductape_runs", state="executing") == 1  # the adopted slow run
    assert sample(text, "ductape_queue_depth") == 0
    assert (sample(text, "ductape_oldest_waiting_run_seconds") or 0) > 0


def _answers(port: int) -> bool:
    try:
        scrape(port)
        return True
    except OSError:
        return False
