"""Replay storm: failed, rolled-back runs replayed from a step and restarted with new input
while workers and drivers are SIGKILLed at random.

The effects file is a payment provider's ledger: every request is a line, keyed by the
run and step that made it (the idempotency key the README tells workflows to pass), so a
request repeated by a kill lands on the same key while a second compensation of the same
charge by another run shows up as a second key. After recovery, each charge is refunded
exactly as many times as the journals say (never twice), every child has its own id, and
the repeated requests are bounded by the kills.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from tests.conftest import ductape_subprocess_env
from tests.process.helpers import lines, spawn, wait_for

RUNS = int(os.environ.get("DUCTAPE_TORTURE_REPLAY_RUNS", "50"))
KILL_SECONDS = float(os.environ.get("DUCTAPE_TORTURE_REPLAY_SECONDS", "12"))

ORDERS = """
    import os
    from pathlib import Path
    from ductape_cli import workflow

    LEDGER = Path(os.environ.get("DUCTAPE_PROJECT", ".")) / "ledger.log"

    def request(kind, subject, key):
        with LEDGER.open("a") as f:
            f.write(f"{kind} {subject} {key}\\n")
        return {"id": subject}

    def ship(order, fail):
        if fail:
            raise RuntimeError(f"carrier refused {order}")
        return {"shipped": order}

    @workflow("storm-pay")
    async def storm_pay(ctx):
        return await ctx.step("capture", lambda: request("CAPTURE", ctx.workflow_id, ctx.workflow_id + ":capture"))

    @workflow("storm-order")
    async def storm_order(ctx):
        run = ctx.workflow_id
        await ctx.step("validate", lambda: {"order": ctx.input.order})
        await ctx.step("charge", lambda: request("CHARGE", run, run + ":charge"),
                       lambda out: request("REFUND", out["id"], run + ":refund"))
        await ctx.workflow("pay-" + ctx.input.order, "storm-pay", {"order": ctx.input.order})
        await ctx.step("reserve", lambda: request("RESERVE", run, run + ":reserve"),
                       lambda out: request("RELEASE", out["id"], run + ":release"))
        return await ctx.step("ship", lambda: ship(ctx.input.order, ctx.input.fail))
"""


def _drivers(
    root: Path, ids: list[str], count: int, seconds: float
) -> list[tuple[subprocess.Popen[bytes], list[str]]]:
    procs = []
    for index in range(count):
        share = ids[index::count]
        ids_file = root / f"driver-{index}.json"
        ids_file.write_text(json.dumps(share), encoding="utf-8")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.torture.replay_driver",
                str(root),
                str(ids_file),
                str(root / "drivers.log"),
                str(seconds),
            ],
            cwd=root,
            env=ductape_subprocess_env(root),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        procs.append((proc, share))
    return procs


def test_replay_storm(project, durability_report) -> None:
    project.write("orders", ORDERS)
    engine = project.engine()
    originals = [
        engine.start("storm-order", {"order": f"O{i}", "fail": True}, detach=True)[0].id
        for i in range(RUNS)
    ]
    rng = random.Random(4321)
    workers = [
        spawn(project.root, "worker", "--poll", "0.05", "--concurrency", "2") for _ in range(2)
    ]
    drivers = _drivers(project.root, originals, 2, 120)
    ledger = project.root / "ledger.log"
    kills = 0
    stop_killing = time.monotonic() + KILL_SECONDS
    try:
        while time.monotonic() < stop_killing:
            time.sleep(rng.uniform(0.2, 0.6))
            if rng.random() < 0.5:
                victim = rng.randrange(len(workers))
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait(timeout=10)
                workers[victim] = spawn(
                    project.root, "worker", "--poll", "0.05", "--concurrency", "2"
                )
            else:
                victim = rng.randrange(len(drivers))
                proc, share = drivers[victim]
                if proc.poll() is not None:
                    continue  # that driver has finished its share
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
                drivers[victim] = _drivers(project.root, share, 1, 120)[0]
            kills += 1
        for proc, _ in drivers:
            _, stderr = proc.communicate(timeout=180)
            assert proc.returncode == 0, stderr.decode()
        # Drivers that were killed between a replay and a restart: one calm pass finishes their share.
        for proc, _ in _drivers(project.root, originals, 1, 120):
            _, stderr = proc.communicate(timeout=180)
            assert proc.returncode == 0, stderr.decode()

        def settled() -> bool:
            return not engine.store.list_runs(
                status="running", limit=1
            ) and not engine.store.list_runs(status="pending", limit=1)

        try:
            wait_for(settled, timeout=180, what="every run to finish")
        except AssertionError:
            stuck = [
                r
                for status in ("pending", "running")
                for r in engine.store.list_runs(status=status, limit=20)
            ]
            raise AssertionError(
                "runs never finished: "
                + "; ".join(
                    f"{r.id} {r.tag} {r.status} owner={r.owner} ready_at={r.ready_at} "
                    f"waiting={r.waiting} cancel={r.cancel_requested}"
                    for r in stuck
                )
            ) from None
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.communicate(timeout=30)

    runs = {r.id: r for r in engine.store.list_runs(limit=100_000)}
    parents = [r for r in runs.values() if r.tag == "storm-order"]
    children = [r for r in runs.values() if r.tag == "storm-pay"]
    by_link: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in parents:
        for link in ("replayed_from", "restarted_from"):
            if getattr(r, link):
                by_link[(link, getattr(r, link))].append(r.id)
    log = [json.loads(line) for line in lines(project.root / "drivers.log")]
    refused = {entry["refused"] for entry in log if "refused" in entry}
    assert all(entry["from_step"] == "ship" for entry in log if "refused" in entry)
    for original in originals:
        assert runs[original].status == "rolled_back", runs[original]
        assert len(by_link[("restarted_from", original)]) == 1
        assert runs[by_link[("restarted_from", original)][0]].status == "completed"
        replays = by_link[("replayed_from", original)]
        assert len(replays) == (0 if original in refused else 1)
        assert all(runs[r].status == "rolled_back" for r in replays)
    requests = [line.split() for line in lines(ledger)]
    applied = {tuple(r) for r in requests}  # the provider applies each idempotency key once
    refunds, releases = Counter(), Counter()
    for kind, subject, _key in applied:
        if kind == "REFUND":
            refunds[subject] += 1
        elif kind == "RELEASE":
            releases[subject] += 1
    said_refunded, said_released = Counter(), Counter()
    for r in parents:
        for record in engine.store.load_journal(r.id).values():
            if record.rollback_status == "completed" and record.tag == "charge":
                said_refunded[record.output["id"]] += 1
            if record.rollback_status == "completed" and record.tag == "reserve":
                said_released[record.output["id"]] += 1
    assert refunds == said_refunded and releases == said_released
    assert max(refunds.values()) == 1 and max(releases.values()) == 1  # no charge refunded twice
    charges = {subject for kind, subject, _ in applied if kind == "CHARGE"}
    assert set(refunds) <= charges
    # No child id collides: every parent that reached its child has its own, nothing failed over an id.
    assert all("already used" not in json.dumps(r.error or {}) for r in runs.values())
    assert len({c.id for c in children}) == len(children) == len(parents)
    assert all(c.status == "completed" and runs[c.parent_id].tag == "storm-order" for c in children)

    repeated = len(requests) - len(applied)
    assert repeated <= kills, (repeated, kills)
    durability_report(
        f"replay storm: originals={RUNS} runs={len(parents)} children={len(children)} kills={kills} "
        f"refunds={sum(refunds.values())} refused_replays={len(refused)} repeated_requests={repeated}"
    )
