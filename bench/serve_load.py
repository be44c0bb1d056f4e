"""A bounded load test of `ductape serve`: run starts over HTTP, with live subscriptions.

    python bench/serve_load.py                       # 2,000 starts, 20 clients, 100 subscriptions
    python bench/serve_load.py --runs 500 --json out.json

It makes a temporary project (one 3-step workflow), starts `ductape serve` as a
separate process on a free loopback port (its in-process worker executes the
runs), and then:

* 20 concurrent clients POST the runs; the first 100 runs each get a WebSocket
  subscription opened right after their start (their steps take 30 ms each, so
  most of them commit while the subscription is open: live events);
* it waits until every run has completed (time-limited), checks that every
  subscriber got every event of its run exactly once and in order, closes the
  subscriptions and checks the server holds none afterwards;
* it reports requests/s for the starts, runs/s to completion, the delay from a
  step's commit (its `timestamp`) to its arrival at a subscriber (p50/p99, live
  events only), and the server's resident memory before and after.

Loopback only; everything is bounded by count and by `--time-limit`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TOKEN = "load-test-token-0123456789"
PAUSE = 0.03  # seconds each step of a subscribed run takes
WORKFLOW = """
import time

from ductape_cli import workflow


def work(value, pause):
    time.sleep(pause)  # subscribed runs pause, so their steps commit after the subscription opens
    return {"i": value}


@workflow("load")
async def load(ctx):
    pause = ctx.input.pause or 0
    a = await ctx.step("a", lambda: work(ctx.input.i, pause))
    b = await ctx.step("b", lambda: work(a["i"], pause))
    await ctx.step("c", lambda: work(b["i"], pause))
    return {"i": ctx.input.i}
"""
EXPECTED = [
    "status:pending",
    "status:running",
    "step_started:a",
    "step_completed:a",
    "step_started:b",
    "step_completed:b",
    "step_started:c",
    "step_completed:c",
    "status:completed",
    "completed",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Server:
    """`ductape serve` in its own process over a fresh project."""

    def __init__(self, folder: Path, concurrency: int) -> None:
        (folder / "ductape.toml").write_text('[project]\nname = "load"\n', encoding="utf-8")
        (folder / "workflows").mkdir()
        (folder / "workflows" / "load.py").write_text(WORKFLOW, encoding="utf-8")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DUCTAPE_TOKEN": TOKEN,
            "DUCTAPE_PROJECT": str(folder),
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        env.pop("DUCTAPE_STORE", None)
        self.log = open(folder / "serve.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ductape_cli",
                "serve",
                "--port",
                str(self.port),
                "--concurrency",
                str(concurrency),
                "--no-access-log",
            ],
            cwd=folder,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_up(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("serve did not start")

    def stop(self) -> int:
        self.proc.terminate()
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.log.close()
        return code


async def subscriber(ws_url: str, run_id: str, opened_ms: float, out: dict[str, Any]) -> None:
    import websockets

    events: list[dict[str, Any]] = []
    delays: list[float] = []
    async with websockets.connect(
        f"{ws_url}/api/workflows/runs/{run_id}/subscribe?token={TOKEN}"
    ) as socket_:
        while True:
            event = json.loads(await socket_.recv())
            now_ms = time.time() * 1000
            events.append(event)
            if event["type"] == "step_completed" and event["timestamp"] >= opened_ms:
                delays.append(
                    now_ms - event["timestamp"]
                )  # committed after we subscribed: a live event
            if event["type"] in ("completed", "failed", "error"):
                break
    out[run_id] = {"events": events, "delays": delays}


def labels(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        if e["type"] == "status_changed":
            out.append(f"status:{e['data']['status']}")
        elif e["type"] in ("step_started", "step_completed"):
            out.append(f"{e['type']}:{e['data']['step']}")
        elif e["type"] != "workflow_started":
            out.append(e["type"])
    return out


async def load(
    url: str, runs: int, clients: int, subscriptions: int, time_limit: float
) -> dict[str, Any]:
    import httpx

    ws_url = "ws" + url[len("http") :]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    started: list[str] = []
    latencies: list[float] = []
    subscribed: dict[str, Any] = {}
    sub_tasks: list[asyncio.Task[None]] = []
    counter = iter(range(runs))
    deadline = time.monotonic() + time_limit
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:

        async def client() -> None:
            for i in counter:
                if time.monotonic() > deadline:
                    raise TimeoutError("time limit reached while starting runs")
                began = time.perf_counter()
                body = {
                    "workflow": "load",
                    "input": {"i": i, "pause": PAUSE if i < subscriptions else 0},
                }
                response = await http.post("/api/workflows/runs", json=body)
                latencies.append((time.perf_counter() - began) * 1000)
                response.raise_for_status()
                run_id = response.json()["executionId"]
                started.append(run_id)
                if i < subscriptions:
                    opened = time.time() * 1000
                    sub_tasks.append(
                        asyncio.ensure_future(subscriber(ws_url, run_id, opened, subscribed))
                    )

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        start_seconds = time.perf_counter() - began
        while True:
            count = (
                await http.get("/api/workflows/runs", params={"status": "completed", "limit": 1})
            ).json()["count"]
            if count >= runs:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"time limit reached: {count} of {runs} runs completed")
            await asyncio.sleep(0.1)
        complete_seconds = time.perf_counter() - began
        await asyncio.wait_for(asyncio.gather(*sub_tasks), max(1.0, deadline - time.monotonic()))
        failed = (
            await http.get("/api/workflows/runs", params={"status": "failed", "limit": 1})
        ).json()["count"]

    wrong = {
        run_id: labels(got["events"])
        for run_id, got in subscribed.items()
        if labels(got["events"]) != EXPECTED
    }
    duplicates = sum(
        len(got["events"]) - len({(e["id"], e["type"]) for e in got["events"]})
        for got in subscribed.values()
    )
    delays = [d for got in subscribed.values() for d in got["delays"]]
    return {
        "runs": runs,
        "clients": clients,
        "subscriptions": len(subscribed),
        "started": len(set(started)),
        "failed_runs": failed,
        "wrong_sequences": len(wrong),
        "wrong_examples": dict(list(wrong.items())[:2]),
        "duplicate_events": duplicates,
        "start_seconds": round(start_seconds, 2),
        "requests_per_second": round(runs / start_seconds, 1),
        "completed_seconds": round(complete_seconds, 2),
        "runs_per_second": round(runs / complete_seconds, 1),
        "start_latency_ms_p50": round(percentile(latencies, 0.5), 1),
        "start_latency_ms_p99": round(percentile(latencies, 0.99), 1),
        "live_step_events": len(delays),
        "commit_to_subscriber_ms_p50": round(percentile(delays, 0.5), 1),
        "commit_to_subscriber_ms_p99": round(percentile(delays, 0.99), 1),
        "commit_to_subscriber_ms_mean": round(statistics.fmean(delays), 1) if delays else None,
    }


def open_subscriptions(url: str) -> int:
    import httpx

    return int(httpx.get(url + "/healthz").json()["subscriptions"])


def measure(
    runs: int = 2000,
    clients: int = 20,
    subscriptions: int = 100,
    time_limit: float = 120.0,
    concurrency: int = 4,
    folder: Path | None = None,
) -> dict[str, Any]:
    """Run the whole scenario; returns the figures and the checks' counts."""
    own = folder is None
    root = Path(tempfile.mkdtemp(prefix="ductape-serve-load-")) if folder is None else folder
    server = Server(root, concurrency)
    try:
        server.wait_up(60)
        # Warm-up (not measured): imports, connections, the first compile.
        asyncio.run(load(server.url, 50, 5, 5, time_limit))
        time.sleep(0.5)
        baseline = rss_mb(server.proc.pid)
        figures = asyncio.run(load(server.url, runs, clients, subscriptions, time_limit))
        deadline = time.monotonic() + 10
        while open_subscriptions(server.url) and time.monotonic() < deadline:
            time.sleep(0.05)
        figures["open_subscriptions_after"] = open_subscriptions(server.url)
        peak_after = rss_mb(server.proc.pid)
        figures.update(
            {"rss_mb_baseline": round(baseline, 1), "rss_mb_after": round(peak_after, 1)}
        )
        # A second, identical round: memory held on to per run or per subscription would grow again.
        again = asyncio.run(load(server.url, runs, clients, subscriptions, time_limit))
        time.sleep(0.5)
        figures["rss_mb_after_second_round"] = round(rss_mb(server.proc.pid), 1)
        figures["second_round_wrong_sequences"] = again["wrong_sequences"]
        figures["second_round_requests_per_second"] = again["requests_per_second"]
    finally:
        figures_exit = server.stop()
        if own:
            shutil.rmtree(root, ignore_errors=True)
    figures["serve_exit_code"] = figures_exit
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4, help="serve's worker threads")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds for each round")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    figures = measure(
        args.runs, args.clients, args.subscriptions, args.time_limit, args.concurrency
    )
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
