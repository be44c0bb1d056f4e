"""ductape on PostgreSQL: beside DBOS Transact on the same server, and worker throughput per backend.

    python bench/postgres.py                       # everything, a few minutes
    python bench/postgres.py --workflows 200       # fewer workflows per figure
    python bench/postgres.py --markdown out.md     # also write the tables as Markdown

Figures (each system on its own fresh database of the same server, DBOS on its
native PostgreSQL backend; medians of `--repeat` rounds, systems alternating):

* steps/s — 10-step workflows run back to back in one process (steps per second);
* workflows/s — one-step workflows run back to back in one process;
* round trips per workflow — the calling thread's waits for the server during
  each timed loop (psycopg calls that waited on the socket, counted where
  ductape's store and DBOS's SQLAlchemy engine both go through psycopg's
  `waiting.wait`); background threads not counted;
* floor — autocommitted one-row INSERTs through psycopg on the same server:
  the most steps/s any system that commits each step durably can reach here
  (`synchronous_commit = on`, so each waits for the WAL flush);
* worker throughput — `--queued` one-step runs queued, then 1, 2 and 4
  `ductape worker` processes drain them, on SQLite and on PostgreSQL: the runs
  become due once every worker has printed its start line, and runs/s is
  measured from the first run's start to the last run's end as the store
  recorded them (so no interpreter start-up is counted; `--no-workers` skips it);
  beside them, a DBOS queue on the same server drained by 1, 2 and 4 DBOS worker
  processes (150 one-step workflows due at one instant, polled every 50 ms).

`DUCTAPE_BENCH_PG` names the server (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Batch, sequential  # noqa: E402
from shapes import ductape_module, toml  # noqa: E402

FIGURES = (
    "steps/s",
    "workflows/s",
    "round trips per 10-step workflow",
    "round trips per one-step workflow",
)
SERVER = os.environ.get("DUCTAPE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    return SERVER.rsplit("/", 1)[0] + "/" + name


def create_database(name: str) -> str:
    import psycopg

    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(name)


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class RoundTrips:
    """Counts the exchanges with the server that the benchmark's thread waited for: every
    psycopg call that talks to the server (a statement, a commit, a pipeline's sync) runs a
    generator through `psycopg.waiting.wait`, for ductape's store and DBOS's SQLAlchemy engine
    alike; one that had to wait on the socket at least once is counted (a commit or rollback
    with no transaction open never does). Both systems run a workflow called this way on the
    calling thread; their background threads (DBOS's queue and notification listeners,
    ductape's lease keeper) are not counted."""

    def __init__(self) -> None:
        import threading

        from psycopg import waiting

        self.count = 0
        original, caller = waiting.wait, threading.get_ident()

        def tracked(gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
            try:
                wanted = next(gen)
            except StopIteration as done:
                return done.value
            self.count += 1
            while True:
                try:
                    wanted = gen.send((yield wanted))
                except StopIteration as done:
                    return done.value

        def wait(gen: Any, *args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == caller:
                gen = tracked(gen)
            return original(gen, *args, **kwargs)

        waiting.wait = wait

    def per_workflow(self, loop: Callable[[], Batch]) -> tuple[Batch, float]:
        before = self.count
        batch = loop()
        return batch, (self.count - before) / batch.workflows


ROUND_TRIPS: RoundTrips | None = None


def counted(loop: Callable[[], Batch]) -> tuple[Batch, float]:
    """Run `loop`; also return the round trips per workflow it made (all threads of this process)."""
    global ROUND_TRIPS
    if ROUND_TRIPS is None:
        ROUND_TRIPS = RoundTrips()
    return ROUND_TRIPS.per_workflow(loop)


def floor(url: str, count: int) -> float:
    """Durable commits/s: autocommitted one-row INSERTs, each waiting for its WAL flush."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_floor (id INTEGER PRIMARY KEY, data TEXT)")
        started = time.perf_counter()
        for i in range(count):
            conn.execute("INSERT INTO bench_floor VALUES (%s, %s)", (i, "x"))
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE bench_floor")
    return count / seconds


def project(folder: Path) -> Path:
    (folder / "workflows").mkdir(parents=True, exist_ok=True)
    (folder / "ductape.toml").write_text(toml("normal"), encoding="utf-8")
    (folder / "workflows" / "bench.py").write_text(ductape_module(), encoding="utf-8")
    return folder


def figures(
    ten_steps: Callable[[], Any], one_step: Callable[[], Any], count: int
) -> dict[str, float]:
    """The figures of one system, given its two workflows to run (after one warm-up run each)."""
    ten_steps()
    one_step()
    ten, ten_trips = counted(lambda: sequential(ten_steps, count, 10, cap_seconds=60))
    one, one_trips = counted(lambda: sequential(one_step, count, 1, cap_seconds=60))
    return {
        "steps/s": ten.workflows * 10 / ten.seconds,
        "workflows/s": one.workflows / one.seconds,
        "round trips per 10-step workflow": ten_trips,
        "round trips per one-step workflow": one_trips,
    }


def ductape_rates(name: str, folder: Path, count: int) -> dict[str, float]:
    from ductape_cli.config import load_config
    from ductape_cli.engine.engine import Engine

    os.environ["DUCTAPE_STORE"] = database_url(name)
    try:
        engine = Engine(load_config(project(folder)))
        got = figures(lambda: engine.run("steps10", {}), lambda: engine.run("steps1", {}), count)
        engine.close()
    finally:
        del os.environ["DUCTAPE_STORE"]
    return got


def dbos_rates(name: str, count: int) -> dict[str, float]:
    from dbos import DBOS
    from dbos_side import WORKFLOWS

    DBOS(
        config={"name": "bench", "system_database_url": database_url(name), "log_level": "WARNING"}
    )
    DBOS.launch()
    try:
        return figures(WORKFLOWS["steps10"], WORKFLOWS["steps1"], count)
    finally:
        DBOS.destroy()


HOLD = 1e6  # seconds the queued runs are pushed into the future while the workers start


def _shift_ready(store: str, seconds: float) -> None:
    """Move every queued run's due time by `seconds` in one transaction (order kept)."""
    sql = "UPDATE runs SET ready_at = ready_at + {} WHERE status = 'pending' AND owner IS NULL"
    if store.startswith("postgresql"):
        import psycopg

        with psycopg.connect(store, autocommit=True) as conn:
            conn.execute(sql.format("%s"), (seconds,))
    else:
        import sqlite3

        conn = sqlite3.connect(store, isolation_level=None, timeout=60)
        conn.execute(sql.format("?"), (seconds,))
        conn.close()


def _window(store: str) -> float:
    """Seconds from the first run's start to the last run's end, as the store recorded them."""
    sql = "SELECT MIN(started_at), MAX(ended_at) FROM runs"
    if store.startswith("postgresql"):
        import psycopg

        with psycopg.connect(store, autocommit=True) as conn:
            row = conn.execute(sql).fetchone()
    else:
        import sqlite3

        conn = sqlite3.connect(store, timeout=60)
        row = conn.execute(sql).fetchone()
        conn.close()
    assert row is not None
    return float(row[1] - row[0])


def worker_throughput(store: str, folder: Path, queued: int, workers: int) -> float:
    """Queue `queued` one-step runs, start `workers` worker processes, time until all completed.

    The runs are held (due in the future) until every worker has printed its start line, then
    all become due at once; the rate is runs / (last end - first start) as the store recorded
    them, so no worker's interpreter start-up falls inside the window (it used to: with four
    workers, three start-ups ran beside the first worker's drain).
    """
    from ductape_cli.config import load_config
    from ductape_cli.engine.engine import Engine

    root = project(folder)
    env = dict(
        os.environ,
        DUCTAPE_PROJECT=str(root),
        DUCTAPE_STORE=store,
        PYTHONPATH=str(Path(__file__).resolve().parent.parent),
    )
    os.environ["DUCTAPE_STORE"] = store
    try:
        engine = Engine(load_config(root))
        for _ in range(queued):
            engine.start("steps1", {}, detach=True)
        engine.close()
        _shift_ready(store, HOLD)
        engine = Engine(load_config(root))
        logs = [root / f"worker-{i}.log" for i in range(workers)]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "ductape_cli", "worker", "--poll", "0.05"],
                cwd=root,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log.open("w"),
            )
            for log in logs
        ]
        try:
            while not all(log.exists() and "worker " in log.read_text() for log in logs):
                time.sleep(0.01)  # every worker has started (interpreters and imports excluded)
            _shift_ready(store, -HOLD)
            while engine.store.count_runs(status="completed") < queued:
                time.sleep(0.02)
            seconds = _window(store)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=60)
        engine.close()
    finally:
        del os.environ["DUCTAPE_STORE"]
    return queued / seconds


DBOS_QUEUED = (
    150  # DBOS's queue drains at tens of workflows a second: fewer, or the figure takes minutes
)


def dbos_worker_throughput(url: str, folder: Path, queued: int, workers: int) -> float:
    """The same drain with DBOS on the same server: `workers` processes on one DBOS queue
    (polled every 50 ms, like `ductape worker --poll 0.05`), `queued` one-step workflows
    enqueued due at one instant; timed by watching `dbos.workflow_status` every 20 ms."""
    import psycopg
    from drain import stop_workers, wait_ready

    script = str(Path(__file__).resolve().parent / "dbos_queue.py")
    folder.mkdir(parents=True, exist_ok=True)
    logs = [folder / f"dbos-worker-{i}.log" for i in range(workers)]
    procs: list[subprocess.Popen[bytes]] = []

    try:
        for i, log in enumerate(logs):
            with log.open("w") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, script, url, "work"],
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=out,
                    )
                )
            if i == 0:  # the first one creates DBOS's schema; the others must not race it
                wait_ready(logs[:1], procs)
        wait_ready(logs, procs)
        due = time.time() + 3.0 + queued * 0.01
        subprocess.run(
            [sys.executable, script, url, "enqueue", str(queued), str(due), "--one-step"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        first = None
        with psycopg.connect(url, autocommit=True) as conn:
            began = time.monotonic()
            while True:
                started, done = conn.execute(
                    "SELECT COUNT(*) FILTER (WHERE status != 'ENQUEUED'), "
                    "COUNT(*) FILTER (WHERE status = 'SUCCESS') FROM dbos.workflow_status"
                ).fetchone() or (0, 0)
                if first is None and started:
                    first = time.monotonic()
                if done >= queued:
                    last = time.monotonic()
                    break
                if time.monotonic() - began > 300:
                    raise RuntimeError(f"DBOS: only {done} of {queued} workflows completed")
                time.sleep(0.02)
    finally:
        stop_workers(procs)
    return queued / (last - (first or last))


def worker_table(workers: dict[tuple[str, int], list[float]]) -> list[str]:
    lines = [
        "",
        "| worker processes | SQLite runs/s | PostgreSQL runs/s | PostgreSQL ÷ 1 worker "
        f"| DBOS queue on PostgreSQL ({DBOS_QUEUED} queued), runs/s | ductape ÷ DBOS on PostgreSQL |",
        "|---|---|---|---|---|---|",
    ]
    base_pg = statistics.median(workers[("postgresql", 1)])
    for count in (1, 2, 4):
        lite, pg = (
            statistics.median(workers[("sqlite", count)]),
            statistics.median(workers[("postgresql", count)]),
        )
        dbos = workers.get(("dbos", count))
        theirs = statistics.median(dbos) if dbos else None
        lines.append(
            f"| {count} | {lite:,.0f} | {pg:,.0f} | {pg / base_pg:.2f}× "
            + (f"| {theirs:,.1f} | {pg / theirs:.0f}× |" if theirs else "| - | - |")
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workflows", type=int, default=500, help="workflows per in-process figure"
    )
    parser.add_argument("--queued", type=int, default=400, help="runs queued for the worker figure")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown")
    parser.add_argument(
        "--no-workers", action="store_true", help="skip the worker throughput figure"
    )
    args = parser.parse_args()

    rates: dict[str, dict[str, list[float]]] = {"ductape": {}, "DBOS": {}, "floor": {}}
    workers: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="ductape-bench-pg-") as tmp:
        base = Path(tmp)
        for round_ in range(args.repeat):
            for system in ("ductape", "DBOS") if round_ % 2 == 0 else ("DBOS", "ductape"):
                name = f"bench_{system.lower()}_{uuid.uuid4().hex[:8]}"
                create_database(name)
                try:
                    got = (
                        ductape_rates(name, base / name, args.workflows)
                        if system == "ductape"
                        else dbos_rates(name, args.workflows)
                    )
                finally:
                    drop_database(name)
                for figure, value in got.items():
                    rates[system].setdefault(figure, []).append(value)
                print(
                    f"round {round_ + 1} {system}: "
                    + ", ".join(f"{k} {v:,.1f}" for k, v in got.items()),
                    flush=True,
                )
            name = f"bench_floor_{uuid.uuid4().hex[:8]}"
            try:
                commits = floor(create_database(name), args.workflows)
            finally:
                drop_database(name)
            rates["floor"].setdefault("steps/s", []).append(commits)
            print(f"round {round_ + 1} floor: {commits:,.0f} durable commits/s", flush=True)
            for backend in () if args.no_workers else ("sqlite", "postgresql", "dbos"):
                for count in (1, 2, 4):
                    name = f"bench_workers_{uuid.uuid4().hex[:8]}"
                    folder = base / name
                    store = (
                        str(folder / ".ductape" / "state.db")
                        if backend == "sqlite"
                        else create_database(name)
                    )
                    try:
                        if backend == "dbos":
                            value = dbos_worker_throughput(store, folder, DBOS_QUEUED, count)
                        else:
                            value = worker_throughput(store, folder, args.queued, count)
                    finally:
                        if backend != "sqlite":
                            drop_database(name)
                    workers.setdefault((backend, count), []).append(value)
                    print(
                        f"round {round_ + 1} workers {backend} x{count}: {value:,.0f} runs/s",
                        flush=True,
                    )

    lines = [
        "| figure | ductape on PostgreSQL | DBOS on PostgreSQL | ductape ÷ DBOS |",
        "|---|---|---|---|",
    ]
    for figure in FIGURES:
        ours, theirs = (
            statistics.median(rates["ductape"][figure]),
            statistics.median(rates["DBOS"][figure]),
        )
        digits = 0 if figure.endswith("/s") else 1
        lines.append(
            f"| {figure} | {ours:,.{digits}f} | {theirs:,.{digits}f} | {ours / theirs:.{1 + digits}f}× |"
        )
    ceiling = statistics.median(rates["floor"]["steps/s"])
    ours = statistics.median(rates["ductape"]["steps/s"])
    lines += [
        "",
        f"Floor: {ceiling:,.0f} durable commits/s (one-row INSERTs, autocommitted); "
        f"ductape's steps/s are {ours / ceiling:.2f} of it.",
    ]
    if workers:
        lines += worker_table(workers)
    table = "\n".join(lines)
    print("\n" + table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
