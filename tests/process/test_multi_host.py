"""Several hosts on one PostgreSQL store: worker processes with different host ids (DUCTAPE_HOST)
share a schema; every step runs once, work spreads over hosts, and a signal sent from elsewhere
reaches a run waiting on another host through NOTIFY, well before the idle backstop."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Project, make_project
from tests.process.helpers import lines, run, spawn, wait_for

WORK = """
    import os
    from pathlib import Path
    from ductape_cli import workflow

    LOG = Path(os.environ.get("DUCTAPE_PROJECT", ".")) / "effects.log"

    def effect(run_id, n):
        with LOG.open("a") as f:
            f.write(f"{run_id}:{n}:{os.environ.get('DUCTAPE_HOST')}\\n")
        return n

    @workflow("spread")
    async def spread(ctx):
        return [await ctx.step(f"s{n}", lambda n=n: effect(ctx.workflow_id, n)) for n in range(3)]

    @workflow("approve")
    async def approve(ctx):
        got = await ctx.wait_for_signal("go", timeout="5m")
        return {"payload": got, "host": os.environ.get("DUCTAPE_HOST")}
"""


@pytest.fixture
def pg_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    yield from make_project(tmp_path, monkeypatch, "postgresql")


def _host(project: Project, name: str) -> object:
    os.environ["DUCTAPE_HOST"] = name  # read by the spawned worker; restored below
    try:
        return spawn(project.root, "worker", "--concurrency", "2")
    finally:
        del os.environ["DUCTAPE_HOST"]


def test_workers_on_three_hosts_share_one_store(pg_project: Project) -> None:
    pg_project.write("work", WORK)
    engine = pg_project.engine()
    ids = [engine.start("spread", {}, detach=True)[0].id for _ in range(60)]
    workers = [_host(pg_project, f"host-{name}") for name in "abc"]
    try:
        wait_for(
            lambda: all(engine.store.get_run(i).status == "completed" for i in ids),
            timeout=120,
            what="all runs",
        )
        effects = lines(pg_project.root / "effects.log")
        assert Counter(e.rsplit(":", 1)[0] for e in effects) == Counter(
            f"{i}:{n}" for i in ids for n in range(3)
        )
        hosts = Counter(e.rsplit(":", 1)[1] for e in effects)
        assert len(hosts) >= 2, hosts  # the work spread over hosts

        waiting = engine.start("approve", {}, detach=True)[0].id
        wait_for(
            lambda: engine.store.get_run(waiting).waiting is not None,
            timeout=60,
            what="the run to wait",
        )
        time.sleep(6)  # every host idle past the backstop: only a notification wakes one in time
        sent = time.monotonic()
        done = run(pg_project.root, "signal", waiting, "go", "--data", '{"ok": true}', "--no-wait")
        assert done.returncode in (0, 5), done.stderr  # 5: stored, the run continues elsewhere
        wait_for(
            lambda: engine.store.get_run(waiting).status == "completed",
            timeout=30,
            what="the signalled run",
        )
        elapsed = time.monotonic() - sent
        print(
            f"\nmulti-host: runs=60 hosts={dict(hosts)} signal-to-completion={elapsed * 1000:.0f}ms"
        )
        assert elapsed < 4.0  # the idle backstop is 5 s
        assert engine.store.get_run(waiting).output["host"].startswith("host-")
    finally:
        for worker in workers:
            worker.terminate()  # type: ignore[attr-defined]
        for worker in workers:
            worker.wait(timeout=30)  # type: ignore[attr-defined]
