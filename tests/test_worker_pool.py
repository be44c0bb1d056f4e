"""The worker's claimer and executor pool (issue 19): batch claims sized to the free executors,
every run executed once, executors claiming their next run themselves while a queue drains, the
dead-owner and stale-lease lookups done once per poll rather than once per claim."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from ductape_cli.engine.worker import Worker
from ductape_cli.store import SqliteStore
from tests.conftest import ductape_subprocess_env

JOB = """
    from ductape_cli import workflow

    @workflow("job")
    async def job(ctx):
        a = await ctx.step("a", lambda: ctx.input["n"])
        return await ctx.step("b", lambda: a * 2)
"""


@pytest.fixture
def queued(project: Any) -> Any:
    project.write("job", JOB)
    engine = project.engine()
    ids = [engine.start("job", {"n": i}, detach=True)[0].id for i in range(12)]
    return engine, ids


def spy(
    monkeypatch: pytest.MonkeyPatch, name: str, store_class: type = SqliteStore
) -> list[tuple[Any, ...]]:
    """Record every call of the store method `name` (on the class of the engine's store: SQLite or PostgreSQL)."""
    calls: list[tuple[Any, ...]] = []
    real = getattr(store_class, name)

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(self, *args, **kwargs)
        calls.append((args, kwargs, result))
        return result

    monkeypatch.setattr(store_class, name, recording)
    return calls


def test_a_claim_takes_one_run_per_free_executor(
    queued: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, ids = queued
    claims = spy(monkeypatch, "claim_ready", type(engine.store))
    rides = spy(monkeypatch, "take_finish_claim", type(engine.store))
    assert Worker(engine, concurrency=4, poll_interval=0.05).run(once=True) == 12
    first_args, _, first_runs = claims[0]
    assert (
        first_args[3] == 4 and len(first_runs) == 4
    )  # (owner, now, ttl, limit): all four executors were free
    assert all(0 < args[3] <= 4 and len(runs) <= args[3] for args, _, runs in claims)
    assert all(len(runs or []) <= 1 for _, _, runs in rides)  # a finish claims one run at most
    claimed = [run.id for _, _, runs in claims + rides for run in runs or []]
    assert sorted(claimed) == sorted(ids)  # each run claimed exactly once
    for run_id in ids:
        result = engine.result(run_id)
        assert result["status"] == "completed" and result["completed_steps"] == ["a", "b"]
    engine.close()


def test_dead_owners_are_looked_up_once_per_poll_not_per_claim(
    queued: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, ids = queued
    lookups = spy(monkeypatch, "owners_on_host", type(engine.store))
    leases = spy(monkeypatch, "expired_leases", type(engine.store))
    claims = spy(monkeypatch, "claim_ready", type(engine.store))
    rides = spy(monkeypatch, "take_finish_claim", type(engine.store))
    assert Worker(engine, concurrency=1, poll_interval=30).run(once=True) == 12
    claimed_runs = sum(len(runs or []) for _, _, runs in claims + rides)
    assert claimed_runs == 12 and len(lookups) == 1 and len(leases) == 1
    engine.close()


def claimers(monkeypatch: pytest.MonkeyPatch, store_class: type) -> list[tuple[str, int]]:
    """(thread name, runs claimed) of every claim_ready call."""
    calls: list[tuple[str, int]] = []
    real = store_class.claim_ready

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        runs = real(self, *args, **kwargs)
        calls.append((threading.current_thread().name, len(runs)))
        return runs

    monkeypatch.setattr(store_class, "claim_ready", recording)
    return calls


def test_while_a_queue_drains_an_executor_claims_its_next_run_itself(
    queued: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, ids = queued
    calls = claimers(monkeypatch, type(engine.store))
    rides = spy(monkeypatch, "take_finish_claim", type(engine.store))
    assert Worker(engine, concurrency=1, poll_interval=0.05).run(once=True) == 12
    by_executor = sum(n for name, n in calls if name == "ductape-worker-0")
    with_finish = sum(len(runs or []) for _, _, runs in rides)
    # The claimer handed over the first run; the executor took the rest, each in the
    # transaction that finished the run before.
    assert by_executor == 0 and with_finish == 11
    assert all(engine.result(run_id)["status"] == "completed" for run_id in ids)
    engine.close()


def test_an_executor_whose_claim_fails_leaves_claiming_to_the_claimer(
    queued: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, ids = queued
    store_class = type(engine.store)
    real = store_class.claim_ready

    def failing_on_executors(self: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name.startswith("ductape-worker-") and not (
            threading.current_thread().name.endswith("claim")
        ):
            raise RuntimeError("the executor's claim failed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(store_class, "claim_ready", failing_on_executors)
    worker = Worker(engine, concurrency=2, poll_interval=0.05)
    assert worker.run(once=True) == 12 and worker.failed == 0
    assert all(engine.result(run_id)["status"] == "completed" for run_id in ids)
    engine.close()


def test_a_run_claimed_with_a_finish_goes_back_to_the_queue_when_the_worker_stops(
    queued: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, ids = queued
    rides = spy(monkeypatch, "take_finish_claim", type(engine.store))
    real = Worker._execute

    def execute_then_stop(self: Worker, run: Any) -> None:
        real(self, run)
        self.stop_event.set()  # asked to stop while the first run was executing

    monkeypatch.setattr(Worker, "_execute", execute_then_stop)
    assert Worker(engine, concurrency=1, poll_interval=0.05).run(once=True) == 1
    runs = [engine.get_run(run_id) for run_id in ids]
    assert sum(run.status == "completed" for run in runs) == 1
    assert all(run.owner is None and run.lease is None for run in runs)  # nothing left held
    assert [len(runs or []) for _, _, runs in rides] == [1]  # the finish did claim one


def test_a_store_error_while_standing_by_does_not_end_the_claimer(
    queued: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Standing by, the claimer reads the stale leases; a busy store there must not kill it."""
    from ductape_cli.engine.standby import Standby
    from ductape_cli.errors import StoreBusy

    engine, ids = queued
    holder = Standby(tmp_path / "slots", "k", 1, join_when_idle=False, every=0)
    assert holder.may_take()  # another worker holds the only slot
    store_class = type(engine.store)
    real = store_class.expired_leases
    failures: list[int] = []

    def busy_at_first(self: Any, *args: Any, **kwargs: Any) -> Any:
        if len(failures) < 2:
            failures.append(1)
            raise StoreBusy("the store is busy")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(store_class, "expired_leases", busy_at_first)
    worker = Worker(
        engine,
        poll_interval=0.05,
        standby=Standby(tmp_path / "slots", "k", 1, join_when_idle=False, every=0),
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while len(failures) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        holder.give_back()  # the other worker stops: this one takes over
        while worker.processed < len(ids) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
        thread.join(timeout=30)
    assert len(failures) == 2
    assert all(engine.result(run_id)["status"] == "completed" for run_id in ids)
    engine.close()


def test_a_worker_of_a_project_without_triggers_starts_without_pydantic(project) -> None:
    """`ductape worker` looks for triggers as it starts; with none, the component tables
    (pydantic, ~90 ms of CPU) stay unread."""
    code = (
        "import sys\n"
        "from ductape_cli.config import load_config\n"
        "from ductape_cli.engine.engine import Engine\n"
        "from ductape_cli.engine.triggers import Background\n"
        "engine = Engine(load_config())\n"
        "engine.registry()\n"
        "background = Background(engine, print)\n"
        "background.start()\n"
        "background.stop()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic')[:3])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project.root,
        env=ductape_subprocess_env(project.root),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
