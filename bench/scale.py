"""Figures 7 and 8 (issue 19): workers draining a queue, beside DBOS queues; reads that must stay
flat from 1,000 to 1,000,000 runs.

Figure 7 runs real `ductape worker` processes (see drain.py); figure 8 times
the engine calls behind `ductape status <prefix>` and `ductape related ID` in
process, where the query is all there is (whole-process figures add ~300 ms of
start-up that would hide a scan).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DRAIN_FIGURE = "7. drain a queue of 3-step runs: runs/s"
READS_FIGURE = "8. reads at scale, in process: median ms"
DUCTAPE = "ductape"
DBOS = "DBOS tuned"


def drain_cases(quick: bool) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    """(label, queued, worker processes) for ductape, and for DBOS (slower: fewer runs)."""
    ductape = [
        ("1 worker, 1,000 queued", 1000, 1),
        ("1 worker, 10,000 queued", 10_000, 1),
        ("2 workers, 2,000 queued", 2000, 2),
        ("4 workers, 2,000 queued", 2000, 4),
    ]
    if not quick:
        ductape.insert(0, ("1 worker, 2,000 queued", 2000, 1))
    n = 60 if quick else 150
    dbos = [(f"{w} worker{'s' if w > 1 else ''}, {n} queued", n, w) for w in (1, 2, 4)]
    return ductape, dbos


def drain_figure(
    results: Any,
    folder: Path,
    quick: bool,
    with_dbos: bool,
    log: Callable[[str], None],
    rep: int = 0,
) -> None:
    """One round of every drain; the ductape cases start one further along each round, so
    the writeback of an earlier case's store (the 10,000-run one) lands on a different case."""
    from drain import dbos_drain, drain

    ductape, dbos = drain_cases(quick)
    ductape = ductape[rep % len(ductape) :] + ductape[: rep % len(ductape)]
    for label, queued, workers in ductape:
        try:
            rate = drain(folder / f"ductape-{queued}-{workers}", queued, workers)["runs/s"]
        except RuntimeError as exc:
            results.notes.append(f"drain {label}: FAILED: {exc}")
            continue
        results.add(DRAIN_FIGURE, label, DUCTAPE, rate)
        log(f"  ductape {label:28s} {rate:8.0f} runs/s")
    if not with_dbos:
        return
    for label, queued, workers in dbos:
        try:
            rate = dbos_drain(folder / f"dbos-{queued}-{workers}", queued, workers, tuned=True)[
                "runs/s"
            ]
        except (RuntimeError, OSError) as exc:
            results.notes.append(f"DBOS drain {label}: FAILED: {exc}")
            continue
        results.add(DRAIN_FIGURE, label, DBOS, rate)
        log(f"  DBOS    {label:28s} {rate:8.1f} runs/s")


def _median_ms(call: Callable[[], Any], times: int = 25) -> float:
    call()  # warm: page cache, statement cache
    values = []
    for _ in range(times):
        began = time.perf_counter()
        call()
        values.append(time.perf_counter() - began)
    return statistics.median(values) * 1000


def family(side: Any, root_id: str) -> list[str]:
    """Four runs linked to `root_id`, one per lineage column (copies of its row with new ids)."""
    conn = side.engine.store.conn
    cur = conn.execute("SELECT * FROM runs WHERE id = ?", (root_id,))
    columns, row = [d[0] for d in cur.description], cur.fetchone()
    ids = []
    for column in ("replayed_from", "restarted_from", "resumed_from", "parent_id"):
        values = dict(zip(columns, row, strict=True))
        values.update(id=f"wf_family_{column}", idempotency_key=None, **{column: root_id})
        conn.execute(
            f"INSERT INTO runs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
            list(values.values()),
        )
        ids.append(values["id"])
    return ids


def reads_figure(
    results: Any, folder: Path, quick: bool, log: Callable[[str], None]
) -> list[tuple[str, str, str]]:
    """Time `status <unique prefix>` and `related ID` on a small and a big store; returns scaling targets."""
    from stores import build_read_store

    from ductape_cli.engine.lineage import related

    sizes = (1_000, 50_000) if quick else (1_000, 1_000_000)
    for size in sizes:
        log(f"  building a store with {size:,} runs")
        began = time.perf_counter()
        side, ids = build_read_store(folder / f"reads-{size}", size, 100)
        root = ids["short"]
        family(side, root)
        built = time.perf_counter() - began
        prefix = root[:15]  # the id's time part: unique here, and not the whole id
        engine = side.engine
        if engine.get_run(prefix).id != root:
            raise RuntimeError(f"prefix {prefix} does not name {root}")
        status_ms = _median_ms(lambda: engine.status(prefix))  # noqa: B023 - called before the next iteration
        related_ms = _median_ms(lambda: related(engine, root))  # noqa: B023
        results.add(READS_FIGURE, "status <prefix>", f"{size:,} runs", status_ms)
        results.add(READS_FIGURE, "related ID", f"{size:,} runs", related_ms)
        results.notes.append(f"reads store with {size:,} runs built in {built:.1f}s")
        log(f"  {size:>9,} runs: status <prefix> {status_ms:7.2f} ms, related {related_ms:7.2f} ms")
        side.close()
    small, big = (f"{s:,} runs" for s in sizes)
    return [
        (f"status <prefix>: {big} / {small}", "status <prefix>", "1.2"),
        (f"related ID: {big} / {small}", "related ID", "1.2"),
    ]
