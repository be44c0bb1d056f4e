"""ductape beside DBOS Transact on SQLite: one process, fresh stores in one folder, medians of three.

    python bench/run.py                      # everything, about 7-10 minutes
    python bench/run.py --quick              # a fifth of the workflows, smaller stores, 3 runs per command, 1 drain
    python bench/run.py --only steps10,floor # some figures (names: see --help)
    python bench/run.py --markdown out.md    # also write the tables as Markdown

Every figure runs for every system in each repetition (the order rotates), so
drift on a busy machine lands on all of them alike; only the ratios are meant
to travel to another machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    DBOS_SHIPPED,
    DBOS_TUNED,
    DUCTAPE_FULL,
    DUCTAPE_NORMAL,
    SYSTEMS,
    Results,
    concurrent,
    fmt,
    ratio,
    render,
    sequential,
    table,
)

FULL_GROWN_FLOOR = "WAL, synchronous=FULL, WAL file already grown (a long-lived store)"
# name -> (row label, steps per workflow, workflows, threads)
WORKLOADS = {
    "steps10": ("1. 200 workflows × 10 no-op steps", 10, 200, 0),
    "steps1": ("2. 1,000 workflows × 1 step", 1, 1000, 0),
    "steps10-1kb": ("3. as 1, 1 KB JSON output per step", 10, 200, 0),
    "concurrent": ("4. 8 threads × 10-step workflows, one store", 10, 200, 8),
}
TAG_OF = {
    "steps10": "steps10",
    "steps1": "steps1",
    "steps10-1kb": "steps10-1kb",
    "concurrent": "steps10",
}
FLOORS = {  # label -> (journal_mode, synchronous, count, WAL file grown first)
    "WAL, synchronous=NORMAL (ductape default)": ("WAL", "NORMAL", 10_000, False),
    "WAL, synchronous=FULL (ductape durability=full)": ("WAL", "FULL", 3000, False),
    FULL_GROWN_FLOOR: ("WAL", "FULL", 3000, True),
    "DELETE journal, synchronous=FULL (DBOS shipped)": ("DELETE", "FULL", 1000, False),
}
FIGURES = [*WORKLOADS, "floor", "process", "drain", "reads"]
FLOOR_FIGURE = "5. raw SQLite single-row commits/s"
PROCESS_FIGURE = "6. whole process"
# What a terminal view imports from rich (DESIGN §6: Rich output for people), timed alone
# so the terminal rows can be judged on what ductape adds to it.
RICH_IMPORT = "import rich.live, rich.spinner, rich.table, rich.tree"
RICH_REFERENCE = f'python -c "{RICH_IMPORT}"'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a fifth of the workflows, shorter caps, smaller stores",
    )
    parser.add_argument("--only", default="", help=f"comma-separated figures: {', '.join(FIGURES)}")
    parser.add_argument(
        "--reps", type=int, default=3, help="repetitions of figures 1-5 (default 3)"
    )
    parser.add_argument("--no-dbos", action="store_true", help="ductape only")
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="folder for the fresh stores (default: a new temp folder)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the stores afterwards")
    parser.add_argument(
        "--markdown", type=Path, default=None, help="also write the tables to this Markdown file"
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write every repetition's raw figures as JSON"
    )
    args = parser.parse_args()
    args.only = [x.strip() for x in args.only.split(",") if x.strip()] or FIGURES
    unknown = set(args.only) - set(FIGURES)
    if unknown:
        parser.error(
            f"unknown figure(s) {', '.join(sorted(unknown))}; choose from {', '.join(FIGURES)}"
        )
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- machine ---------------------------------------------------------------------


def machine(folder: Path) -> list[tuple[str, str]]:
    def sh(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    lscpu = [
        line
        for line in sh("lscpu").splitlines()
        if line.split(":")[0].strip()
        in (
            "Architecture",
            "CPU(s)",
            "Model name",
            "Thread(s) per core",
            "Core(s) per socket",
            "Hypervisor vendor",
            "BogoMIPS",
        )
    ]
    fs = sh("df", "-T", str(folder)).splitlines()[-1:]
    try:
        from importlib.metadata import version

        dbos_version = version("dbos")
    except Exception:  # noqa: BLE001
        dbos_version = "not installed"
    load = os.getloadavg()
    return [
        ("nproc", sh("nproc")),
        ("lscpu", "; ".join(" ".join(line.split()) for line in lscpu)),
        (
            "memory",
            " ".join(sh("free", "-h").splitlines()[1].split()[:2])
            if sh("free", "-h") != "?"
            else "?",
        ),
        ("filesystem of the store folder", " ".join(fs[0].split()[:2]) if fs else "?"),
        ("kernel", platform.release()),
        ("python", platform.python_version() + " " + platform.python_implementation()),
        ("sqlite", sqlite3.sqlite_version),
        ("dbos", dbos_version),
        ("load average at start", " ".join(f"{x:.2f}" for x in load)),
    ]


# -- figures 1-4 --------------------------------------------------------------


def make_side(system: str, folder: Path) -> Any:
    if system in (DUCTAPE_NORMAL, DUCTAPE_FULL):
        from ductape_side import DuctapeSide

        return DuctapeSide(folder, "full" if system == DUCTAPE_FULL else "normal")
    from dbos_side import DbosSide

    return DbosSide(folder, tuned=system == DBOS_TUNED)


def workload(
    results: Results, system: str, name: str, folder: Path, scale: float, cap: float
) -> None:
    label, steps, count, threads = WORKLOADS[name]
    count = max(threads or 20, int(count * scale))
    tag = TAG_OF[name]
    side = make_side(system, folder)
    try:
        side.warm_up([tag])
        if system in (DBOS_SHIPPED, DBOS_TUNED) and name == "steps10":
            mode, sync = side.pragmas()
            results.notes.append(
                f"{system}: DBOS's own connections report journal_mode={mode}, synchronous={sync}"
            )
        run_one = lambda: side.run(tag)  # noqa: E731
        if threads:
            batch = concurrent(run_one, threads, count, steps, cap)
        else:
            batch = sequential(run_one, count, steps, cap)
    finally:
        side.close()
    results.add_batch(label, system, batch)
    log(
        f"  {system:15s} {name:12s} {batch.workflows:5d} wf in {batch.seconds:6.2f}s  "
        f"{batch.figures['steps/s']:8.0f} steps/s  p50 {batch.figures['p50 ms']:.2f} ms"
    )


def floors(results: Results, folder: Path, scale: float, cap: float) -> None:
    from floor import commits_per_second

    folder.mkdir(parents=True, exist_ok=True)
    for index, (label, (mode, sync, count, grown)) in enumerate(FLOORS.items()):
        rate = commits_per_second(
            folder / f"floor{index}-{mode}-{sync}.db",
            mode,
            sync,
            max(200, int(count * scale)),
            cap,
            grown_wal=grown,
        )
        results.add(FLOOR_FIGURE, label, "commits/s", rate)
        log(f"  floor {label:50s} {rate:9.0f} commits/s")


# -- figure 6 -----------------------------------------------------------------


def processes(results: Results, folder: Path, quick: bool) -> None:
    from procs import ductape_argv, median_ms, timed
    from stores import build_read_store, query_plans

    folder.mkdir(parents=True, exist_ok=True)
    runs = 3 if quick else 5
    py = sys.executable
    dt = ductape_argv()

    def add(label: str, measure: Callable[[], list[float]]) -> None:
        """Time one command; a command that fails is reported under Notes, not fatal to the run."""
        try:
            values = measure()
        except RuntimeError as exc:
            results.notes.append(f"{label}: FAILED: {str(exc).strip().splitlines()[-1]}")
            log(f"  {label}: FAILED")
            return
        results.add(PROCESS_FIGURE, label, "median ms", median_ms(values))
        log(f"  {label:60s} {median_ms(values):8.0f} ms")

    log("  reference interpreters")
    add("python -c pass", lambda: timed([py, "-c", "pass"], folder, runs))
    add('python -c "import typer"', lambda: timed([py, "-c", "import typer"], folder, runs))
    add(RICH_REFERENCE, lambda: timed([py, "-c", RICH_IMPORT], folder, runs))
    add("ductape --help", lambda: timed([*dt, "--help"], folder, runs))

    log("  ductape run / DBOS import-launch-run-exit")
    from ductape_side import write_project

    project = write_project(folder / "proc-run", "normal")
    sample = [*dt, "run", "sample3", "--input", '{"name": "jane"}']
    add("ductape run sample3 (pipe)", lambda: timed(sample, project, runs))
    add("ductape run sample3 --json", lambda: timed([*sample, "--json"], project, runs))
    add("ductape run sample3 (tty)", lambda: timed(sample, project, runs, tty=True))
    full = write_project(folder / "proc-run-full", "full")
    add(
        "ductape run sample3 --json, durability=full",
        lambda: timed([*sample, "--json"], full, runs),
    )
    try:
        import dbos  # noqa: F401
    except ImportError:
        log("  (dbos not installed: no DBOS process figure)")
    else:
        once = str(Path(__file__).resolve().parent / "dbos_once.py")
        add(
            "DBOS import-launch-run-exit, shipped",
            lambda: timed([py, once, str(folder / "once-shipped.sqlite")], folder, runs),
        )
        from dbos_tuning import tune

        tuned_db = folder / "once-tuned.sqlite"
        tune(tuned_db)
        add(
            "DBOS import-launch-run-exit, tuned",
            lambda: timed([py, once, str(tuned_db), "--tuned"], folder, runs),
        )

    sizes = (2_000, 20_000) if quick else (1_000, 100_000)
    long_events = 2_000 if quick else 10_000
    built: dict[int, tuple[Path, dict[str, str]]] = {}
    for size in sizes:
        log(f"  building a store with {size:,} runs and a {long_events:,}-event run")
        began = time.perf_counter()
        side, ids = build_read_store(folder / f"read-{size}", size, long_events)
        results.notes.append(
            f"store with {size:,} runs built in {time.perf_counter() - began:.1f}s; plans: {query_plans(side, ids['long'])}"
        )
        built[size] = (side.root, ids)
        side.close()

    small, big = sizes
    list_label = "ductape list --limit 20, {:,} runs (pipe)".format
    history_label = f"ductape history, {long_events:,} events, {{:,}}-run store (pipe)".format
    for size in sizes:
        root, ids = built[size]
        add(list_label(size), partial(timed, [*dt, "list", "--limit", "20"], root, runs))
        add(history_label(size), partial(timed, [*dt, "history", ids["long"]], root, runs))
    results.scaling.append(
        (f"list --limit 20: {big:,} runs / {small:,} runs", list_label(big), list_label(small))
    )
    results.scaling.append(
        (
            f"history of one run: {big:,}-run store / {small:,}-run store",
            history_label(big),
            history_label(small),
        )
    )
    root, ids = built[big]
    add(
        f"ductape list --limit 20 --json, {big:,} runs",
        lambda: timed([*dt, "list", "--limit", "20", "--json"], root, runs),
    )
    add(
        f"ductape list --limit 20, {big:,} runs (tty)",
        lambda: timed([*dt, "list", "--limit", "20"], root, runs, tty=True),
    )
    add(
        f"ductape history --json, {long_events:,} events",
        lambda: timed([*dt, "history", ids["long"], "--json"], root, runs),
    )
    # rich renders the whole timeline: seconds per run, so fewer of them
    add(
        f"ductape history, {long_events:,} events (tty)",
        lambda: timed([*dt, "history", ids["long"]], root, 3, tty=True, warm_up=0),
    )
    add(
        f"ductape history, 100 events, {big:,}-run store (pipe)",
        lambda: timed([*dt, "history", ids["short"]], root, runs),
    )
    add(
        f"ductape status ID, {big:,}-run store (pipe)",
        lambda: timed([*dt, "status", ids["short"]], root, runs),
    )
    add(
        f"ductape status ID --json, {big:,}-run store",
        lambda: timed([*dt, "status", ids["short"], "--json"], root, runs),
    )


# -- figures 7 and 8 (issue 19) -------------------------------------------------


def drain_rows(results: Results) -> list[list[str]]:
    from scale import DBOS, DRAIN_FIGURE, DUCTAPE

    rows = []
    for (figure, metric), row in results.rows.items():
        if figure != DRAIN_FIGURE:
            continue
        ours = row.cells[DUCTAPE].median if DUCTAPE in row.cells else None
        theirs = row.cells[DBOS].median if DBOS in row.cells else None
        rows.append([metric, fmt(ours), fmt(theirs)])
    return rows


def reads_rows(results: Results) -> list[list[str]]:
    from scale import READS_FIGURE

    rows = []
    for (figure, metric), row in results.rows.items():
        if figure != READS_FIGURE:
            continue
        cells = list(row.cells.items())
        rows.append(
            [
                metric,
                *(f"{size}: {fmt(c.median)}" for size, c in cells),
                ratio(cells[-1][1].median, cells[0][1].median),
            ]
        )
    return rows


def scale_targets(results: Results, check: Callable[..., None]) -> None:
    """Issue 19's ratios: drain rate flat with queue depth, more workers more throughput, a short
    tail with 8 threads, reads flat at scale."""
    from scale import DRAIN_FIGURE, DUCTAPE, READS_FIGURE

    def drained(label: str) -> float | None:
        return results.median(DRAIN_FIGURE, label, DUCTAPE)

    one_small, one_big = drained("1 worker, 1,000 queued"), drained("1 worker, 10,000 queued")
    one = drained("1 worker, 2,000 queued") or one_small
    two, four = drained("2 workers, 2,000 queued"), drained("4 workers, 2,000 queued")
    check(
        "drain, 1 worker: 10,000 queued / 1,000 queued",
        one_big / one_small if one_big and one_small else None,
        0.85,
    )
    check("drain: 2 workers / 1 worker", two / one if two and one else None, 1.3)
    check("drain: 4 workers / 2 workers", four / two if four and two else None, 1.0)
    fig4 = WORKLOADS["concurrent"][0]
    p50, p99 = (
        results.median(fig4, "p50 ms", DUCTAPE_NORMAL),
        results.median(fig4, "p99 ms", DUCTAPE_NORMAL),
    )
    check(
        "8 threads on one store: p99 / p50 (ductape normal)",
        p99 / p50 if p99 and p50 else None,
        10,
        at_most=True,
    )
    for metric in ("status <prefix>", "related ID"):
        row = results.rows.get((READS_FIGURE, metric))
        if row and len(row.cells) == 2:
            (small, a), (big, b) = row.cells.items()
            if a.median and b.median:
                check(
                    f"{metric}: {big} / {small} (in process)",
                    b.median / a.median,
                    1.2,
                    at_most=True,
                )


# -- tables --------------------------------------------------------------------


def share_rows(results: Results) -> list[list[str]]:
    """Steps/s of figure 1 as a share of the raw commit floor with the same journal and synchronous."""
    fig = WORKLOADS["steps10"][0]
    floor_of = {
        DUCTAPE_NORMAL: "WAL, synchronous=NORMAL (ductape default)",
        DBOS_TUNED: "WAL, synchronous=NORMAL (ductape default)",
        DUCTAPE_FULL: "WAL, synchronous=FULL (ductape durability=full)",
        DBOS_SHIPPED: "DELETE journal, synchronous=FULL (DBOS shipped)",
    }
    rows = []
    for system in SYSTEMS:
        steps = results.median(fig, "steps/s", system)
        floor = results.median(FLOOR_FIGURE, floor_of[system], "commits/s")
        if steps is None or floor is None:
            continue
        rows.append(
            [
                system,
                floor_of[system],
                fmt(steps),
                fmt(floor),
                f"{steps / floor:.1%}",
                f"1 : {floor / steps:.1f}",
            ]
        )
    return rows


def process_rows(results: Results) -> list[list[str]]:
    rows = [r for (fig, _), r in results.rows.items() if fig == PROCESS_FIGURE]
    ms = {r.metric: r.cells["median ms"].median for r in rows}
    base = ms.get("python -c pass")
    out = []
    for name, value in ms.items():
        out.append([name, fmt(value), ratio(value, base)])
    return out


def target_rows(results: Results) -> list[list[str]]:
    """The issue's targets, each as the ratio it is stated in, and whether this run met it."""
    fig = WORKLOADS["steps10"][0]
    proc = {
        r.metric: r.cells["median ms"].median
        for (f, _), r in results.rows.items()
        if f == PROCESS_FIGURE
    }
    rows: list[list[str]] = []

    def check(name: str, value: float | None, goal: float, at_most: bool = False) -> None:
        if value is None:
            return
        met = value <= goal if at_most else value >= goal
        sign = "≤" if at_most else "≥"
        rows.append([name, f"{value:.2f}", f"{sign} {goal:g}", "met" if met else "MISSED"])

    steps_n = results.median(fig, "steps/s", DUCTAPE_NORMAL)
    tuned = results.median(fig, "steps/s", DBOS_TUNED)
    floor_n = results.median(FLOOR_FIGURE, "WAL, synchronous=NORMAL (ductape default)", "commits/s")
    check(
        "durable steps/s, ductape normal / DBOS tuned",
        steps_n / tuned if steps_n and tuned else None,
        10,
    )
    check(
        "durable steps/s, ductape normal / raw WAL NORMAL commits/s",
        steps_n / floor_n if steps_n and floor_n else None,
        0.25,
    )
    steps_f = results.median(fig, "steps/s", DUCTAPE_FULL)
    floor_f = results.median(
        FLOOR_FIGURE, "WAL, synchronous=FULL (ductape durability=full)", "commits/s"
    )
    check(
        "durable steps/s, ductape full / raw WAL FULL commits/s (bounded by the disk's fsyncs)",
        steps_f / floor_f if steps_f and floor_f else None,
        0.5,
    )
    floor_g = results.median(FLOOR_FIGURE, FULL_GROWN_FLOOR, "commits/s")
    check(
        "the same, over raw commits on a WAL file already grown (ductape full reuses its WAL)",
        steps_f / floor_g if steps_f and floor_g else None,
        0.5,
    )
    run = proc.get("ductape run sample3 (pipe)")
    for variant in ("shipped", "tuned"):
        dbos = proc.get(f"DBOS import-launch-run-exit, {variant}")
        check(
            f"DBOS import-launch-run-exit ({variant}) / ductape run sample3",
            dbos / run if dbos and run else None,
            10,
        )
    help_ms, typer_ms = proc.get("ductape --help"), proc.get('python -c "import typer"')
    check(
        'ductape --help / python -c "import typer"',
        help_ms / typer_ms if help_ms and typer_ms else None,
        1.5,
        at_most=True,
    )
    for name, big, small in results.scaling:
        big_ms, small_ms = proc.get(big), proc.get(small)
        if big_ms and small_ms:
            check(name, big_ms / small_ms, 1.25, at_most=True)
    base = proc.get("python -c pass")
    rich_ms = proc.get(RICH_REFERENCE)
    for name, ms in proc.items():
        if (
            base
            and name.startswith("ductape")
            and "10,000 events" not in name
            and "2,000 events" not in name
        ):
            check(f"{name} / python -c pass", ms / base, 4, at_most=True)
            if name.endswith("(tty)") and rich_ms:
                check(
                    f"{name}, less rich's own import, / python -c pass",
                    (ms - (rich_ms - base)) / base,
                    4,
                    at_most=True,
                )
    scale_targets(results, check)
    return rows


def report(results: Results, info: list[tuple[str, str]], markdown: bool) -> str:
    parts = []
    heading = (lambda t: f"\n### {t}\n") if markdown else (lambda t: f"\n{t}\n{'=' * len(t)}")
    parts.append(heading("Machine"))
    parts.append(render(["", ""], [[k, v] for k, v in info], markdown))
    grid = Results()
    from scale import DRAIN_FIGURE, READS_FIGURE

    grid.rows = {
        k: r
        for k, r in results.rows.items()
        if k[0] not in (FLOOR_FIGURE, PROCESS_FIGURE, DRAIN_FIGURE, READS_FIGURE)
    }
    if grid.rows:
        parts.append(
            heading(
                "Figures 1-4: medians of the repetitions (↓ = lower is better; * = time-capped, fewer workflows)"
            )
        )
        parts.append(table(grid, markdown))
    floor_rows = [
        [r.metric, fmt(r.cells["commits/s"].median)]
        for (f, _), r in results.rows.items()
        if f == FLOOR_FIGURE
    ]
    if floor_rows:
        parts.append(heading("5. Raw SQLite single-row commits/s, and figure 1 as a share of it"))
        parts.append(render(["journal and synchronous", "commits/s"], floor_rows, markdown))
        shares = share_rows(results)
        if shares:
            parts.append("")
            parts.append(
                render(
                    [
                        "system",
                        "floor",
                        "steps/s (fig. 1)",
                        "floor commits/s",
                        "share",
                        "floor commits per step",
                    ],
                    shares,
                    markdown,
                )
            )
    proc = process_rows(results)
    if proc:
        parts.append(heading("6. Whole process: median wall time"))
        parts.append(render(["command", "ms", "× python -c pass"], proc, markdown))
    drains = drain_rows(results)
    if drains:
        from scale import DBOS, DUCTAPE

        parts.append(
            heading("7. Drain a queue of 3-step runs with worker processes: runs/s (median)")
        )
        parts.append(render(["case", DUCTAPE, DBOS], drains, markdown))
    reads = reads_rows(results)
    if reads:
        parts.append(heading("8. Reads at scale, in process: median ms of 25 calls"))
        parts.append(render(["read", "small store", "big store", "big / small"], reads, markdown))
    targets = target_rows(results)
    if targets:
        parts.append(heading("Targets (as ratios measured in this run)"))
        parts.append(render(["target", "measured", "goal", ""], targets, markdown))
    if results.notes:
        parts.append(heading("Notes"))
        parts.extend(f"- {n}" for n in dict.fromkeys(results.notes))
    return "\n".join(parts) + "\n"


# -- main ------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    scale, cap = (0.2, 2.0) if args.quick else (1.0, 5.0)
    folder = args.dir or Path(tempfile.mkdtemp(prefix="ductape-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    info = machine(folder)
    systems: list[str] = [DUCTAPE_NORMAL, DUCTAPE_FULL]
    if not args.no_dbos:
        try:
            import dbos_side  # noqa: F401 - imports dbos and registers the workflows
        except ImportError as exc:
            log(f"DBOS figures skipped ({exc}); install with: pip install -e '.[bench]'")
        else:
            systems += [DBOS_SHIPPED, DBOS_TUNED]
    results = Results()
    if args.quick:
        results.notes.append(
            "--quick: figures 1-4 ran a fifth of the workflows their labels name, capped at 2 s"
        )
    started = time.perf_counter()
    log(f"stores in {folder}")
    try:
        workloads = [w for w in WORKLOADS if w in args.only]
        want_floor = "floor" in args.only or bool(workloads)
        for rep in range(args.reps if (workloads or want_floor) else 0):
            log(f"repetition {rep + 1}/{args.reps}")
            order = systems[rep % len(systems) :] + systems[: rep % len(systems)]
            for name in workloads:
                for system in order:
                    workload(
                        results,
                        system,
                        name,
                        folder / f"r{rep}" / name / system.replace(" ", "-"),
                        scale,
                        cap,
                    )
            if want_floor:
                floors(results, folder / f"r{rep}", scale, cap / 2)
        if "drain" in args.only:
            from scale import drain_figure

            for rep in range(1 if args.quick else args.reps):
                log(f"worker drain {rep + 1}")
                drain_figure(
                    results, folder / f"drain{rep}", args.quick, len(systems) > 2, log, rep
                )
        if "reads" in args.only:
            from scale import reads_figure

            log("reads at scale")
            reads_figure(results, folder / "reads", args.quick, log)
        if "process" in args.only:
            log("whole-process figures")
            try:
                processes(results, folder / "process", args.quick)
            except Exception as exc:  # noqa: BLE001 - keep figures 1-5 of a long run
                results.notes.append(f"whole-process figures stopped: {type(exc).__name__}: {exc}")
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    log(f"done in {time.perf_counter() - started:.0f}s")
    print(report(results, info, markdown=False))
    if args.markdown:
        args.markdown.write_text(report(results, info, markdown=True), encoding="utf-8")
    if args.json:
        args.json.write_text(results.to_json(), encoding="utf-8")


if __name__ == "__main__":
    main()
