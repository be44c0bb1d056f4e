"""Figure 7: draining a queue of 3-step runs with `ductape worker` processes.

The workers start first, on an empty store, and say so on stderr; then the runs
are queued in one transaction (copies of one real queued run, with new ids), so
every worker sees the whole queue at once. The rate is runs / (last end - first
start), read from the store: process start-up is not in it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from ductape_side import write_project
from procs import ductape_argv


def _template(root: Path) -> tuple[list[str], tuple[Any, ...], list[str], list[tuple[Any, ...]]]:
    """One real queued run of `steps3` (its runs row and events), removed again from the store."""
    from ductape_cli.config import load_config
    from ductape_cli.engine.engine import Engine

    engine = Engine(load_config(root))
    run, _ = engine.submit("steps3", {})
    conn = engine.store.conn
    cur = conn.execute("SELECT * FROM runs WHERE id = ?", (run.id,))
    run_columns, run_row = [d[0] for d in cur.description], cur.fetchone()
    cur = conn.execute("SELECT * FROM events WHERE run_id = ?", (run.id,))
    event_columns = [d[0] for d in cur.description if d[0] != "id"]
    events = [
        tuple(v for d, v in zip(cur.description, r, strict=True) if d[0] != "id")
        for r in cur.fetchall()
    ]
    engine.store.delete_run(run.id)
    engine.close()
    return run_columns, run_row, event_columns, events


def _enqueue(db: Path, count: int, template: tuple[Any, ...]) -> None:
    run_columns, run_row, event_columns, events = template
    now = time.time()
    runs, rows = [], []
    for n in range(count):
        new_id = f"wf_{int(now * 1000):011x}{n:06x}"
        values = dict(zip(run_columns, run_row, strict=True))
        values.update(id=new_id, created_at=now + n * 1e-6, ready_at=now + n * 1e-6)
        runs.append(tuple(values.values()))
        for event in events:
            fields = dict(zip(event_columns, event, strict=True))
            fields.update(run_id=new_id, ts=now)
            rows.append(tuple(fields.values()))
    conn = sqlite3.connect(db, isolation_level=None, timeout=60)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        f"INSERT INTO runs ({', '.join(run_columns)}) VALUES ({', '.join('?' * len(run_columns))})",
        runs,
    )
    conn.executemany(
        f"INSERT INTO events ({', '.join(event_columns)}) VALUES ({', '.join('?' * len(event_columns))})",
        rows,
    )
    conn.execute("COMMIT")
    conn.close()


def drain(
    folder: Path, queued: int, workers: int, concurrency: int = 1, timeout: float = 120.0
) -> dict[str, float]:
    """Queue `queued` runs for `workers` `ductape worker` processes; returns runs/s and how long it took."""
    root = write_project(folder, "normal")
    template = _template(root)
    db = root / ".ductape" / "state.db"
    logs = [root / f"worker-{i}.log" for i in range(workers)]
    procs = []
    argv = [*ductape_argv(), "worker", "--concurrency", str(concurrency), "--poll", "0.05"]
    try:
        for log in logs:
            with log.open("w") as out:
                procs.append(
                    subprocess.Popen(
                        argv, cwd=root, stdin=subprocess.DEVNULL, stdout=out, stderr=out
                    )
                )
        deadline = time.monotonic() + 60
        while not all("worker " in log.read_text() for log in logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(
                    "workers did not start: " + " | ".join(log.read_text()[-300:] for log in logs)
                )
            time.sleep(0.05)
        _enqueue(db, queued, template)
        reader = sqlite3.connect(db, timeout=60)
        deadline = time.monotonic() + timeout
        while True:
            done = reader.execute(
                "SELECT COUNT(*) FROM runs WHERE status = 'completed'"
            ).fetchone()[0]
            if done >= queued:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {queued} runs completed in {timeout:.0f}s")
            time.sleep(0.1)
        first, last = reader.execute("SELECT MIN(started_at), MAX(ended_at) FROM runs").fetchone()
        reader.close()
    finally:
        stop_workers(procs)
    seconds = last - first
    return {"runs/s": queued / seconds, "seconds": seconds}


def dbos_drain(
    folder: Path, queued: int, workers: int, tuned: bool, timeout: float = 120.0
) -> dict[str, float]:
    """The same with DBOS: `workers` processes on one queue; all `queued` workflows due at one instant."""
    import sys

    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "dbos.sqlite"
    script = str(Path(__file__).resolve().parent / "dbos_queue.py")
    flags = ["--tuned"] if tuned else []
    logs = [folder / f"dbos-worker-{i}.log" for i in range(workers)]
    procs = []
    try:
        for i, log in enumerate(logs):
            with log.open("w") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, script, str(db), "work", *flags],
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=out,
                    )
                )
            if i == 0:  # the first one creates the schema; the others must not race it
                wait_ready(logs[:1], procs)
        wait_ready(logs, procs)
        began = time.monotonic()
        due = time.time() + 3.0 + queued * 0.01
        subprocess.run(
            [sys.executable, script, str(db), "enqueue", str(queued), str(due), *flags],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        # DBOS keeps times in whole seconds on SQLite: time the drain by watching it, every 20 ms.
        reader = sqlite3.connect(db, timeout=60)
        first = None
        while True:
            started, done = reader.execute(
                "SELECT COUNT(*) FILTER (WHERE status != 'ENQUEUED'), COUNT(*) FILTER (WHERE status = 'SUCCESS') "
                "FROM workflow_status"
            ).fetchone()
            if first is None and started:
                first = time.monotonic()
            if done >= queued:
                last = time.monotonic()
                break
            if time.monotonic() - began > timeout:
                raise RuntimeError(
                    f"DBOS: only {done} of {queued} workflows completed in {timeout:.0f}s"
                )
            time.sleep(0.02)
        reader.close()
    finally:
        stop_workers(procs)
    seconds = last - (first or last)
    return {"runs/s": queued / seconds, "seconds": seconds}


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every worker (a graceful stop), then SIGKILL whichever has not gone in 30 s."""
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(logs: list[Path], procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while not all("ready" in log.read_text() for log in logs):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError(
                "DBOS workers did not start: " + " | ".join(log.read_text()[-400:] for log in logs)
            )
        time.sleep(0.05)
