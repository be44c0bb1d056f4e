"""Figure 7's peer: a DBOS queue drained by DBOS worker processes on one system database.

    python dbos_queue.py DB enqueue N AT [--tuned] [--one-step] # N `steps3` (or `steps1`) workflows onto the queue, due at unix time AT (DBOSClient)
    python dbos_queue.py DB work [--tuned]        # launch DBOS and execute from the queue until SIGTERM

DB is an SQLite file, or a postgresql:// URL (`bench/postgres.py`'s worker figure).

Run as separate processes, like `ductape worker`. The queue polls every 50 ms
(DBOS's default is 1 s), the same as the ductape workers' `--poll 0.05`.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

QUEUE = "bench"


def _register(dbos: Any) -> None:
    """The workflow, registered under the plain name `steps3` that the client enqueues."""

    @dbos.step()
    def noop() -> None:
        return None

    def steps3() -> dict[str, bool]:
        for _ in range(3):
            noop()
        return {"ok": True}

    def steps1() -> dict[str, bool]:
        noop()
        return {"ok": True}

    dbos.workflow(name="steps3")(steps3)
    dbos.workflow(name="steps1")(steps1)


def main() -> None:
    db, action = Path(sys.argv[1]), sys.argv[2]
    tuned = "--tuned" in sys.argv
    on_postgres = sys.argv[1].startswith("postgresql")
    if tuned and not on_postgres:
        from dbos_tuning import tune  # registers the synchronous=NORMAL listener in this process

        if not db.exists():
            tune(db)
        else:
            import os

            from dbos_tuning import TUNED_FILES

            TUNED_FILES.add(os.path.realpath(db))
    from dbos import DBOS, DBOSClient

    url = sys.argv[1] if on_postgres else f"sqlite:///{db}"
    if action == "enqueue":
        import time

        client = DBOSClient(system_database_url=url)
        due = float(sys.argv[4])
        for _ in range(int(sys.argv[3])):
            # All due at once (like ductape's one-transaction enqueue), so the enqueue rate is not measured.
            client.enqueue(
                {
                    "queue_name": QUEUE,
                    "workflow_name": "steps1" if "--one-step" in sys.argv else "steps3",
                    "delay_seconds": max(0.0, due - time.time()),
                }
            )
        client.destroy()
        return

    _register(DBOS)
    DBOS(config={"name": "bench", "system_database_url": url, "log_level": "WARNING"})
    logging.getLogger("dbos").setLevel(logging.WARNING)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    DBOS.launch()
    DBOS.register_queue(QUEUE, polling_interval_sec=0.05)
    print("worker ready", file=sys.stderr, flush=True)
    stop.wait()
    DBOS.destroy()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
