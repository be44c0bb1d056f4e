"""Big stores for the read commands: one run with 10,000 events, and 100,000 runs.

The long runs are real: the engine executes them. The 100,000 runs are copies
of two real three-step runs (one completed, one failed) with new ids and times,
written in one transaction per 10,000 runs: executing them one by one would
take longer than the whole benchmark.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ductape_side import DuctapeSide


def long_run(side: DuctapeSide, events: int) -> str:
    """Run the `long` workflow sized so that its history shows exactly `events` events; returns its id.

    History shows workflow_started, step_started + step_completed per step, and
    workflow_completed (however many rows the store keeps for them).
    """
    steps = (events - 2) // 2
    result = side.run("long", {"steps": steps})
    run_id = str(result["workflow_id"])
    shown = len(side.engine.history(run_id))
    if shown != events:
        raise RuntimeError(f"the long run's history shows {shown} events, expected {events}")
    return run_id


def _rows(
    conn: Any, table: str, where: str, run_id: str
) -> tuple[list[str], list[tuple[Any, ...]]]:
    cursor = conn.execute(f"SELECT * FROM {table} WHERE {where} = ?", (run_id,))
    return [d[0] for d in cursor.description], cursor.fetchall()


def bulk_runs(side: DuctapeSide, runs: int, batch: int = 10_000) -> None:
    """Append `runs` copies of two real sample3 runs (1 in 20 the failed one), older than anything present.

    The two templates are executed by the engine, so the copies hold exactly the
    rows, payloads and indexes the engine writes; only ids and times change.
    """
    templates = []
    for fail in (False, True):
        result = side.engine.run("sample3", {"name": "jane", "fail": fail})
        templates.append(str(result["workflow_id"]))
    conn = side.engine.store.conn
    shapes = []
    for run_id in templates:
        shape = {}
        for table, key in (("runs", "id"), ("steps", "run_id"), ("events", "run_id")):
            columns, rows = _rows(conn, table, key, run_id)
            if table == "events":  # new ids from the table's own sequence
                keep = [i for i, c in enumerate(columns) if c != "id"]
                columns, rows = (
                    [columns[i] for i in keep],
                    [tuple(r[i] for i in keep) for r in rows],
                )
            shape[table] = (columns, rows)
        created = shape["runs"][1][0][shape["runs"][0].index("created_at")]
        shapes.append((run_id, created, shape))
    origin = time.time() - runs * 0.01 - 3600
    for first in range(0, runs, batch):
        inserts: dict[str, list[tuple[Any, ...]]] = {"runs": [], "steps": [], "events": []}
        for n in range(first, min(runs, first + batch)):
            template_id, created, shape = shapes[1] if n % 20 == 19 else shapes[0]
            new_id = f"wf_{n:012x}"
            shift = origin + n * 0.01 - created
            for table, (columns, rows) in shape.items():
                for row in rows:
                    inserts[table].append(
                        tuple(
                            new_id
                            if v == template_id
                            else v + shift
                            if c in _TIMES and isinstance(v, float)
                            else v
                            for c, v in zip(columns, row, strict=True)
                        )
                    )
        conn.execute("BEGIN IMMEDIATE")
        for table, (columns, _) in shapes[0][2].items():
            marks = ", ".join("?" * len(columns))
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", inserts[table]
            )
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


_TIMES = {
    "created_at",
    "started_at",
    "ended_at",
    "ts",
    "deadline",
    "lease_expires_at",
    "ready_at",
    "wake_at",
}


def build_read_store(
    folder: Path, runs: int, long_events: int, short_events: int = 100
) -> tuple[DuctapeSide, dict[str, str]]:
    """A project whose store holds `runs` bulk runs plus a long and a short real run."""
    side = DuctapeSide(folder, "normal")
    side.warm_up(["sample3"])
    bulk_runs(side, runs)
    ids = {"long": long_run(side, long_events), "short": long_run(side, short_events)}
    return side, ids


def query_plans(side: DuctapeSide, run_id: str) -> dict[str, str]:
    """EXPLAIN QUERY PLAN of the two reads the commands make, to show they walk an index."""
    conn = side.engine.store.conn
    from ductape_cli.store.sqlite import _RUN_COLUMNS

    plans = {
        "list --limit 20": f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC, id DESC LIMIT 20 OFFSET 0",
        "history": f"SELECT id, run_id, ts, type, step, data FROM events WHERE run_id = '{run_id}' AND id > 0 ORDER BY id",
    }
    return {
        name: "; ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
        for name, sql in plans.items()
    }
