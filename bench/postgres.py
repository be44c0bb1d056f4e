"""ductape on PostgreSQL: beside DBOS Transact on the same server, and worker throughput per backend.

    python bench/postgres.py                       # everything, a few minutes
    python bench/postgres.py --workflows 200       # fewer workflows per figure
    python bench/postgres.py --markdown out.md     # also write the tables as Markdown

Figures (each system on its own fresh database of the same server, DBOS on its
native PostgreSQL backend; medians of `--repeat` rounds, systems alternating):

* steps/s — 10-step workflows run back to back in one process (steps per second);
* workflows/s — one-step workflows run back to back in one process;
* worker throughput — `--queued` one-step runs queued, then 1, 2 and 4
  `ductape worker` processes drain them, on SQLite and on PostgreSQL: the runs
  become due once every worker has printed its start line, and runs/s is
  measured from the first run's start to the last run's end as the store
  recorded them (so no interpreter start-up is counted).

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import sequential  # noqa: E402
from shapes import ductape_module, toml  # noqa: E402

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


def project(folder: Path) -> Path:
    (folder / "workflows").mkdir(parents=True, exist_ok=True)
    (folder / "ductape.toml").write_text(toml("normal"), encoding="utf-8")
    (folder / "workflows" / "bench.py").write_text(ductape_module(), encoding="utf-8")
    return folder


def ductape_rates(url: str, folder: Path, count: int) -> dict[str, float]:
    from ductape_cli.config import load_config
    from ductape_cli.engine.engine import Engine

    os.environ["DUCTAPE_STORE"] = url
    try:
        engine = Engine(load_config(project(folder)))
        for tag in ("steps10", "steps1"):
            engine.run(tag, {})
        ten = sequential(lambda: engine.run("steps10", {}), count, 10, cap_seconds=60)
        one = sequential(lambda: engine.run("steps1", {}), count, 1, cap_seconds=60)
        engine.close()
    finally:
        del os.environ["DUCTAPE_STORE"]
    return {"steps/s": ten.workflows * 10 / ten.seconds, "workflows/s": one.workflows / one.seconds}


def dbos_rates(url: str, count: int) -> dict[str, float]:
    from dbos import DBOS
    from dbos_side import WORKFLOWS

    DBOS(config={"name": "bench", "system_database_url": url, "log_level": "WARNING"})
    DBOS.launch()
    try:
        for tag in ("steps10", "steps1"):
            WORKFLOWS[tag]()
        ten = sequential(WORKFLOWS["steps10"], count, 10, cap_seconds=60)
        one = sequential(WORKFLOWS["steps1"], count, 1, cap_seconds=60)
    finally:
        DBOS.destroy()
    return {"steps/s": ten.workflows * 10 / ten.seconds, "workflows/s": one.workflows / one.seconds}


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
    args = parser.parse_args()

    rates: dict[str, dict[str, list[float]]] = {"ductape": {}, "DBOS": {}}
    workers: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="ductape-bench-pg-") as tmp:
        base = Path(tmp)
        for round_ in range(args.repeat):
            for system in ("ductape", "DBOS") if round_ % 2 == 0 else ("DBOS", "ductape"):
                name = f"bench_{system.lower()}_{uuid.uuid4().hex[:8]}"
                url = create_database(name)
                try:
                    got = (
                        ductape_rates(url, base / name, args.workflows)
                        if system == "ductape"
                        else dbos_rates(url, args.workflows)
                    )
                finally:
                    drop_database(name)
                for figure, value in got.items():
                    rates[system].setdefault(figure, []).append(value)
                print(
                    f"round {round_ + 1} {system}: "
                    + ", ".join(f"{k} {v:,.0f}" for k, v in got.items()),
                    flush=True,
                )
            for backend in ("sqlite", "postgresql"):
                for count in (1, 2, 4):
                    name = f"bench_workers_{uuid.uuid4().hex[:8]}"
                    folder = base / name
                    store = (
                        create_database(name)
                        if backend == "postgresql"
                        else str(folder / ".ductape" / "state.db")
                    )
                    try:
                        value = worker_throughput(store, folder, args.queued, count)
                    finally:
                        if backend == "postgresql":
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
    for figure in ("steps/s", "workflows/s"):
        ours, theirs = (
            statistics.median(rates["ductape"][figure]),
            statistics.median(rates["DBOS"][figure]),
        )
        lines.append(f"| {figure} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.1f}× |")
    lines += [
        "",
        "| worker processes | SQLite runs/s | PostgreSQL runs/s | PostgreSQL ÷ 1 worker |",
        "|---|---|---|---|",
    ]
    base_pg = statistics.median(workers[("postgresql", 1)])
    for count in (1, 2, 4):
        lite, pg = (
            statistics.median(workers[("sqlite", count)]),
            statistics.median(workers[("postgresql", count)]),
        )
        lines.append(f"| {count} | {lite:,.0f} | {pg:,.0f} | {pg / base_pg:.2f}× |")
    table = "\n".join(lines)
    print("\n" + table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
