"""What the change feed costs the hot path: 10-step workflows with and without its triggers.

    python bench/feed_cost.py            # 200 workflows per measurement, medians of 5, alternating

`ductape serve` installs the feed's triggers on the store it serves (so runs written by
any process stream to subscribers); a store never served has none. This measures durable
steps per CPU-second (process time, so other load on the machine blurs it less) on fresh
stores, with no triggers, with each one alone, and with all of them.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ductape_cli.config import ProjectConfig  # noqa: E402
from ductape_cli.definition import define  # noqa: E402
from ductape_cli.engine.engine import Engine  # noqa: E402


async def ten_steps(ctx):  # type: ignore[no-untyped-def]
    for i in range(10):
        await ctx.step(f"s{i}", lambda: None)
    return 1


WORKFLOW = define(tag="ten", handler=ten_steps)
VARIANTS = {
    "no feed (a store never served)": (),
    "status triggers only": ("feed_run_created", "feed_run_status"),
    "event trigger only": ("feed_event",),
    "step trigger only": ("feed_step",),
    "all feed triggers (a served store)": (
        "feed_run_created",
        "feed_run_status",
        "feed_event",
        "feed_step",
    ),
}


def steps_per_cpu_second(keep: tuple[str, ...], workflows: int) -> float:
    folder = Path(tempfile.mkdtemp(prefix="ductape-feed-cost-"))
    try:
        engine = Engine(ProjectConfig(root=folder, path=None, store=str(folder / "state.db")))
        engine.register(WORKFLOW)
        engine.enable_feed()
        for name in ("feed_run_created", "feed_run_status", "feed_event", "feed_step"):
            if name not in keep:
                engine.store.conn.execute(f"DROP TRIGGER {name}")
        engine.run("ten")  # warm: compile the definition, prepare statements
        began = time.process_time()
        for _ in range(workflows):
            engine.run("ten")
        took = time.process_time() - began
        engine.close()
        return workflows * 10 / took
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=200)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.reps):
        for name, keep in VARIANTS.items():
            results[name].append(steps_per_cpu_second(keep, args.workflows))
    base = statistics.median(results["no feed (a store never served)"])
    print(f"{'variant':<38} {'steps per CPU-second':>21} {'vs no feed':>11}")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:<38} {median:>21,.0f} {median / base:>10.0%}")


if __name__ == "__main__":
    main()
