"""One replay-storm driver: replay each failed original from a step, then restart it with new input.

Safe to kill and start again: replays and restarts carry idempotency keys derived from
the original, so a second driver (or the same one after a kill) gets the same runs back.
Writes one JSON line per outcome to its log.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from ductape_cli.config import load_config
from ductape_cli.engine.engine import Engine
from ductape_cli.engine.lineage import replay, restart
from ductape_cli.errors import InvalidState

FROM_STEPS = (
    "validate",
    "charge",
    "charge",
    "ship",
)  # from ship is refused: charge was compensated


def main(root: str, ids: list[str], log_path: str, seconds: float) -> None:
    engine = Engine(load_config(Path(root)))
    todo = list(ids)
    deadline = time.monotonic() + seconds
    with open(log_path, "a", encoding="utf-8") as log:
        while todo and time.monotonic() < deadline:
            original = todo.pop(0)
            if not engine.get_run(original).status.terminal:
                todo.append(original)  # a worker has not finished it yet
                time.sleep(0.02)
                continue
            step = random.Random(original).choice(FROM_STEPS)
            try:
                replayed = replay(
                    engine, original, from_step=step, idempotency_key=f"replay-{original}"
                )
                log.write(
                    json.dumps(
                        {"replay": original, "run": replayed["workflow_id"], "from_step": step}
                    )
                    + "\n"
                )
            except InvalidState as exc:
                log.write(
                    json.dumps({"refused": original, "from_step": step, "message": exc.message})
                    + "\n"
                )
            log.flush()
            restarted = restart(
                engine,
                original,
                set_values=[("fail", False)],
                idempotency_key=f"restart-{original}",
            )
            log.write(json.dumps({"restart": original, "run": restarted["workflow_id"]}) + "\n")
            log.flush()


if __name__ == "__main__":
    main(
        sys.argv[1],
        json.loads(Path(sys.argv[2]).read_text(encoding="utf-8")),
        sys.argv[3],
        float(sys.argv[4]),
    )
