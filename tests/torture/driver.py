"""One torture-test process: start, signal and cancel runs on a shared store until a deadline.

Writes one JSON line per accepted signal and per unexpected error to its log.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from ductape_cli.config import load_config
from ductape_cli.engine.engine import Engine
from ductape_cli.errors import InvalidState


def main(root: str, seconds: float, seed: int, log_path: str) -> None:
    engine = Engine(load_config(Path(root)))
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    counter = 0
    with open(log_path, "w", encoding="utf-8") as log:
        while time.monotonic() < deadline:
            action = rng.random()
            try:
                if action < 0.35:
                    engine.run("ping", {})
                    log.write(json.dumps({"started": True}) + "\n")
                    continue
                runs = engine.store.list_runs(status="running", limit=50)
                if not runs:
                    continue
                target = rng.choice(runs).id
                if action < 0.9:
                    counter += 1
                    n = seed * 1_000_000 + counter
                    engine.signal(target, "go", {"n": n})
                    log.write(json.dumps({"signal": target, "n": n}) + "\n")
                else:
                    engine.cancel(target, "torture", wait_seconds=2)
                    log.write(json.dumps({"cancel": target}) + "\n")
            except InvalidState:
                continue  # it finished (or was cancelled) between our read and our write: expected
            except Exception as exc:  # noqa: BLE001 - anything else is a finding
                log.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
            log.flush()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
