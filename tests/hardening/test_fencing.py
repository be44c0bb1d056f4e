"""Fenced writes: the store contract, and the executor stopping when its lease is gone (item 1)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from ductape_cli.engine.fencing import LostOwnership
from ductape_cli.errors import LeaseLost, StoreError
from ductape_cli.models import Attempt, OpKind, RunStatus, StepRecord, StepStatus
from ductape_cli.store import open_store
from tests.test_store import make_run


@pytest.fixture
def taken(tmp_path: Path):
    """A run claimed by `old`, then taken over by `new` (its lease expired)."""
    store = open_store(str(tmp_path / "s.db"))
    now = time.time()
    store.create_run(make_run(status=RunStatus.PENDING), [])
    old = store.claim_run("wf_1", "old", now, 30)
    new = store.claim_run("wf_1", "new", now + 31, 30)
    assert old is not None and new is not None and old.lease != new.lease
    return store, old.lease, new.lease


def test_every_claim_gets_a_fresh_lease(taken) -> None:
    store, _, new = taken
    assert store.get_run("wf_1").lease == new


def test_a_stale_lease_writes_nothing(taken) -> None:
    store, stale, current = taken
    record = StepRecord("wf_1", 0, OpKind.STEP, "a", StepStatus.COMPLETED, output=1)
    event = [(time.time(), "log", None, {"x": 1})]
    writes = [
        lambda: store.commit_step(record, [], lease=stale),
        lambda: store.commit_step(record, event, {"k": 1}, lease=stale),
        lambda: store.update_op("wf_1", 0, {"status": "failed"}, event, lease=stale),
        lambda: store.record_attempt(
            Attempt("wf_1", 0, 1, time.time(), 5, None), event, lease=stale
        ),
        lambda: store.set_run_fields("wf_1", {"phase": "rolling_back"}, event, lease=stale),
        lambda: store.consume_signal(
            "wf_1", 0, ["go"], time.time(), "signal_received", lease=stale
        ),
        lambda: store.create_hook("tok", "wf_1", 0, "h", None, time.time(), lease=stale),
        lambda: store.suspend_run(
            "wf_1", stale, {"kind": "sleep"}, time.time(), None, time.time(), event
        ),
    ]
    for write in writes:
        with pytest.raises(LeaseLost):
            write()
    assert not store.finish_run("wf_1", stale, {"status": "completed"}, event)
    assert store.renew_leases({"wf_1": stale}, time.time(), 30) == {"wf_1"}
    assert store.load_journal("wf_1") == {} and store.events("wf_1") == []
    run = store.get_run("wf_1")
    assert run.status == "running" and run.phase is None and run.lease == current
    # The current lease still writes.
    store.commit_step(record, event, lease=current)
    assert store.renew_leases({"wf_1": current}, time.time(), 30) == set()
    assert store.finish_run("wf_1", current, {"status": "completed", "owner": None}, [])
    assert store.get_run("wf_1").lease is None


SAMPLE = """
    from ductape_cli import workflow

    @workflow("two")
    async def two(ctx):
        await ctx.step("a", lambda: 1)
        try:
            await ctx.step("b", lambda: 2)
        except Exception:
            pass  # a handler cannot swallow the loss of its lease
        await ctx.step("c", lambda: 3)
        return "done"
"""


def _claimed_execution(project):
    from ductape_cli.engine.execution import Execution

    project.write("two", SAMPLE)
    engine = project.engine()
    run, _ = engine.start("two", {}, detach=True)
    claimed = engine.store.claim_run(run.id, engine.owner, engine.clock.now(), engine.lease_ttl)
    wf = engine.definition("two")
    return engine, Execution(engine, claimed, wf)


def test_the_executor_stops_at_the_first_refused_write(project) -> None:
    engine, execution = _claimed_execution(project)
    # Another worker takes the run over (as after our lease expired) before we execute.
    engine.store.claim_run(execution.view.run_id, "someone-else", engine.clock.now() + 999, 30)
    outcome = engine._loop().run_until_complete(execution.execute())
    assert outcome.lost
    assert engine.store.load_journal(execution.view.run_id) == {}
    assert engine.get_run(execution.view.run_id).owner == "someone-else"


def test_a_lease_that_cannot_be_renewed_in_time_is_abandoned(project, monkeypatch, caplog) -> None:
    engine, execution = _claimed_execution(project)

    def broken(*args, **kwargs):
        raise StoreError("store busy")

    monkeypatch.setattr(engine.store, "renew_leases", broken)
    execution.journal.lease_clock.valid_until = (
        time.monotonic() - 1
    )  # as after a pause longer than the lease
    with caplog.at_level(logging.ERROR, logger="ductape.leases"), pytest.raises(LostOwnership):
        execution.journal.check_lease()
    assert execution.journal.lost
    assert "abandoning" in caplog.text


def test_the_keeper_marks_a_run_taken_over_as_lost(project) -> None:
    engine, execution = _claimed_execution(project)
    engine.store.claim_run(execution.view.run_id, "someone-else", engine.clock.now() + 999, 30)
    engine.leases._renew(
        engine.store, {execution.view.run_id: execution.journal}, engine.clock.now()
    )
    assert execution.journal.lost
    with pytest.raises(LostOwnership):
        execution.journal.boundary()


def test_a_renewal_racing_the_runs_own_finish_is_not_a_takeover(project, caplog) -> None:
    """The keeper renews a lease the execution's own finish has just given up: no warning, not lost."""
    engine, execution = _claimed_execution(project)
    run_id, journal = execution.view.run_id, execution.journal
    journal.releasing = True  # as in `Execution._end`, just before its finish_run
    engine.store.finish_run(run_id, journal.lease or "", {"status": "completed", "owner": None}, [])
    with caplog.at_level(logging.WARNING, logger="ductape"):
        engine.leases._renew(engine.store, {run_id: journal}, engine.clock.now())
    assert not journal.lost
    assert "another owner" not in caplog.text


def test_an_owner_paused_after_its_lease_check_does_not_start_the_step(
    project, monkeypatch
) -> None:
    """The lease is checked where the step's function starts, not only before the step.

    A pause between the journal's check and the function's start (the torture test caught
    one) used to let a process that had lost the run start one more step on resuming.
    """
    from ductape_cli.engine import steps
    from ductape_cli.engine.engine import Engine

    started: list[str] = []
    monkeypatch.setattr(Engine, "step_function", lambda self, tag, fn: lambda: started.append(tag))
    engine, execution = _claimed_execution(project)
    run_id, journal = execution.view.run_id, execution.journal
    submit = steps._THREADS.submit
    submitted: list[object] = []

    def paused_then_submitted(job):
        submitted.append(job)
        # As if this process stopped here, past its lease, while another worker took the run.
        journal.lease_clock.valid_until = time.monotonic() - 1
        engine.store.claim_run(run_id, "someone-else", engine.clock.now() + 999, 30)
        submit(job)

    monkeypatch.setattr(steps._THREADS, "submit", paused_then_submitted)
    outcome = engine._loop().run_until_complete(execution.execute())
    assert outcome.lost
    assert submitted and started == []
    assert engine.store.load_journal(run_id) == {}
