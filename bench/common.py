"""What every benchmark shares: timing loops, medians and percentiles, the result table.

Numbers from one machine are only comparable within one run, so every figure is
kept per repetition and per system, and the table shows medians and ratios.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Systems, in the order the table shows them.
DUCTAPE_NORMAL = "ductape normal"
DUCTAPE_FULL = "ductape full"
DBOS_SHIPPED = "DBOS shipped"
DBOS_TUNED = "DBOS tuned"
SYSTEMS = (DUCTAPE_NORMAL, DUCTAPE_FULL, DBOS_SHIPPED, DBOS_TUNED)

# (ductape, DBOS) pairs compared at the same synchronous setting.
PAIRS = ((DUCTAPE_NORMAL, DBOS_TUNED), (DUCTAPE_FULL, DBOS_SHIPPED))


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Batch:
    """What one timed batch of workflows produced."""

    workflows: int
    steps_per_workflow: int
    seconds: float
    latencies: list[float]
    capped: bool = False

    @property
    def figures(self) -> dict[str, float]:
        return {
            "workflows/s": self.workflows / self.seconds,
            "steps/s": self.workflows * self.steps_per_workflow / self.seconds,
            "p50 ms": percentile(self.latencies, 50) * 1000,
            "p99 ms": percentile(self.latencies, 99) * 1000,
        }


def sequential(
    run_one: Callable[[], Any], count: int, steps: int, cap_seconds: float, min_count: int = 20
) -> Batch:
    """Run `run_one` `count` times back to back, or fewer when `cap_seconds` is up (slow systems)."""
    latencies: list[float] = []
    clock = time.perf_counter
    start = clock()
    for done in range(count):
        began = clock()
        run_one()
        latencies.append(clock() - began)
        if done + 1 >= min_count and clock() - start > cap_seconds:
            break
    seconds = clock() - start
    return Batch(len(latencies), steps, seconds, latencies, capped=len(latencies) < count)


def concurrent(
    run_one: Callable[[], Any],
    threads: int,
    count: int,
    steps: int,
    cap_seconds: float,
    min_each: int = 3,
) -> Batch:
    """`threads` threads share `count` workflows (or stop at `cap_seconds`), all started together."""
    per_thread = count // threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    gate = threading.Barrier(threads + 1)
    clock = time.perf_counter
    deadline = [0.0]

    def worker(index: int) -> None:
        mine = latencies[index]
        gate.wait()
        try:
            for done in range(per_thread):
                began = clock()
                run_one()
                mine.append(clock() - began)
                if done + 1 >= min_each and clock() > deadline[0]:
                    break
        except BaseException as exc:  # noqa: BLE001 - reported after the join
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(i,), name=f"bench-{i}") for i in range(threads)]
    for thread in pool:
        thread.start()
    start = clock()
    deadline[0] = start + cap_seconds
    gate.wait()
    for thread in pool:
        thread.join()
    seconds = clock() - start
    if errors:
        raise errors[0]
    flat = [x for mine in latencies for x in mine]
    return Batch(len(flat), steps, seconds, flat, capped=len(flat) < per_thread * threads)


@dataclass
class Cell:
    values: list[float] = field(default_factory=list)
    notes: set[str] = field(default_factory=set)

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None


@dataclass
class Row:
    figure: str
    metric: str
    lower_is_better: bool = False
    cells: dict[str, Cell] = field(default_factory=dict)

    def cell(self, system: str) -> Cell:
        return self.cells.setdefault(system, Cell())


class Results:
    """Every figure by (figure, metric) row and system column, one value per repetition."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Row] = {}
        self.notes: list[str] = []
        self.scaling: list[
            tuple[str, str, str]
        ] = []  # (target, bigger store's row, smaller store's row)

    def add(
        self, figure: str, metric: str, system: str, value: float, *, note: str | None = None
    ) -> None:
        row = self.rows.get((figure, metric))
        if row is None:
            row = self.rows[(figure, metric)] = Row(
                figure, metric, lower_is_better=metric.endswith("ms")
            )
        cell = row.cell(system)
        cell.values.append(value)
        if note:
            cell.notes.add(note)

    def add_batch(self, figure: str, system: str, batch: Batch) -> None:
        note = f"capped at {batch.workflows} workflows" if batch.capped else None
        for metric, value in batch.figures.items():
            self.add(figure, metric, system, value, note=note)

    def median(self, figure: str, metric: str, system: str) -> float | None:
        row = self.rows.get((figure, metric))
        if row is None or system not in row.cells:
            return None
        return row.cells[system].median

    def to_json(self) -> str:
        return json.dumps(
            {
                f"{r.figure} | {r.metric}": {
                    s: {"values": c.values, "notes": sorted(c.notes)} for s, c in r.cells.items()
                }
                for r in self.rows.values()
            },
            indent=2,
        )


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.1f}×" if a / b >= 10 else f"{a / b:.2f}×"


def table(results: Results, markdown: bool = False) -> str:
    """The system grid: medians per system, then ductape / DBOS at the same synchronous setting."""
    head = ["figure", "metric", *SYSTEMS, "normal / tuned", "full / shipped"]
    lines: list[list[str]] = []
    last_figure = None
    for row in results.rows.values():
        medians = {s: row.cells[s].median if s in row.cells else None for s in SYSTEMS}
        metric = row.metric + (" ↓" if row.lower_is_better else "")
        figure = row.figure if row.figure != last_figure else ""
        last_figure = row.figure
        cells = []
        for s in SYSTEMS:
            text = fmt(medians[s])
            if s in row.cells and row.cells[s].notes:
                text += "*"
            cells.append(text)
        lines.append([figure, metric, *cells, *(ratio(medians[d], medians[o]) for d, o in PAIRS)])
    return render(head, lines, markdown)


def render(head: list[str], lines: list[list[str]], markdown: bool) -> str:
    if markdown:
        out = [
            "| " + " | ".join(head) + " |",
            "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|",
        ]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines, strict=True)]

    def one(cols: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cols, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([one(head), rule, *(one(line) for line in lines)])
