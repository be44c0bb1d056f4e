"""The store protocol's contract, method by method, on SQLite and PostgreSQL alike (`store` fixture)."""

from __future__ import annotations

from typing import Any

import pytest

from ductape_cli.errors import LeaseLost, RunIdTaken, StepTaken, StoreError
from ductape_cli.models import Attempt, OpKind, Run, RunStatus, StepRecord, StepStatus
from ductape_cli.store import open_store

T0 = 1_800_000_000.0


def make_run(run_id: str, **fields: Any) -> Run:
    defaults: dict[str, Any] = {
        "tag": "order",
        "status": RunStatus.PENDING,
        "input": {"n": 1},
        "created_at": T0,
        "ready_at": T0,
    }
    defaults.update(fields)
    return Run(id=run_id, **defaults)


def started(store: Any, run_id: str, **fields: Any) -> Run:
    run, created = store.create_run(
        make_run(run_id, **fields), [(T0, "workflow_started", None, {"input": fields.get("input")})]
    )
    assert created
    return run  # type: ignore[no-any-return]


def step(run_id: str, seq: int, tag: str = "charge", **fields: Any) -> StepRecord:
    return StepRecord(
        run_id=run_id,
        seq=seq,
        kind=OpKind.STEP,
        tag=tag,
        status=StepStatus.COMPLETED,
        output={"ok": seq},
        attempts=1,
        started_at=T0,
        ended_at=T0 + 1,
        **fields,
    )


# -- schema ------------------------------------------------------------------------------


def test_a_new_store_is_fully_migrated_and_reopening_changes_nothing(
    store: Any, opened: Any
) -> None:
    from ductape_cli.store.migrations import MIGRATIONS

    assert store.schema_version()[0] == len(MIGRATIONS)
    started(store, "r1")
    again = opened()
    assert again.schema_version() == store.schema_version()
    assert again.get_run("r1") is not None


def test_an_older_schema_is_migrated_forward_keeping_its_rows(location: str) -> None:
    """A database left at an earlier schema version (before `metadata` and the feed) gets the rest."""
    from ductape_cli.store.migrations import MIGRATIONS

    older = MIGRATIONS.index("ALTER TABLE runs ADD COLUMN metadata TEXT")
    if location.startswith("postgresql"):
        from ductape_cli.store.postgres import PostgresStore

        old = PostgresStore(location, migrate=False)
        old._migrate(upto=older)
        assert old.schema_version() == (older, 0)
        old.conn.execute(
            "INSERT INTO runs (id, tag, status, input, created_at) VALUES (?, ?, ?, ?, ?)",
            ("old", "t", "completed", "1", T0),
        )
    else:
        import sqlite3

        conn = sqlite3.connect(location)
        for sql in MIGRATIONS[:older]:
            conn.execute(sql)
        conn.execute(f"PRAGMA user_version = {older}")
        conn.execute(
            "INSERT INTO runs (id, tag, status, input, created_at) VALUES ('old', 't', 'completed', '1', ?)",
            (T0,),
        )
        conn.commit()
        conn.close()
    store = open_store(location)
    assert store.schema_version()[0] == len(MIGRATIONS)
    run = store.get_run("old")
    assert run is not None and run.input == 1 and run.metadata == {}
    store.set_metadata("old", {"team": "blue"})
    assert store.get_run("old").metadata == {"team": "blue"}
    store.close()


def test_stores_opening_an_empty_database_together_migrate_it_once(location: str) -> None:
    import threading

    errors: list[BaseException] = []
    stores: list[Any] = []

    def open_one() -> None:
        try:
            stores.append(open_store(location))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    from ductape_cli.store.migrations import MIGRATIONS

    assert {s.schema_version()[0] for s in stores} == {len(MIGRATIONS)}
    for s in stores:
        s.close()


# -- definitions ---------------------------------------------------------------------------


def test_definitions_are_versioned_and_the_latest_is_the_last_saved(store: Any) -> None:
    assert (
        store.save_definition("order", "aaa111", "Order", "workflows/order.py", {"steps": [1]})
        is True
    )
    assert (
        store.save_definition("order", "bbb222", "Order", "workflows/order.py", {"steps": [1, 2]})
        is True
    )
    assert (
        store.save_definition("order", "aaa111", "Order", "workflows/order.py", {"steps": [1]})
        is False
    )
    assert (
        store.latest_definition("order")["version"] == "aaa111"
    )  # a reverted version is the latest again
    assert store.get_definition("order", "bbb")["schema"] == {"steps": [1, 2]}  # a version prefix
    assert store.get_definition("order", "zzz") is None
    assert [d["version"] for d in store.list_definitions("order")] == ["bbb222", "aaa111"]
    assert store.latest_definition("nothing") is None


# -- runs ------------------------------------------------------------------------------------


def test_runs_are_created_read_listed_and_counted(store: Any) -> None:
    started(store, "r1", input={"name": "Alice"})
    started(store, "r2", tag="refund", created_at=T0 + 1, status=RunStatus.COMPLETED)
    started(store, "r3", parent_id="r1", created_at=T0 + 2)
    run = store.get_run("r1")
    assert (run.tag, run.status, run.input) == ("order", RunStatus.PENDING, {"name": "Alice"})
    assert store.get_run("missing") is None
    assert [r.id for r in store.list_runs()] == ["r3", "r2", "r1"]
    assert [r.id for r in store.list_runs(tag="order")] == ["r3", "r1"]
    assert [r.id for r in store.list_runs(limit=1, offset=1)] == ["r2"]
    assert [r.id for r in store.list_runs(search="ALICE")] == ["r1"]  # any case
    assert [r.id for r in store.list_runs(parent_id="r1")] == ["r3"]
    assert store.count_runs() == 3 and store.count_runs(status="completed") == 1
    assert store.run_counts() == {"order": {"pending": 2}, "refund": {"completed": 1}}
    assert [r.id for r in store.related_runs("r1")] == ["r3"]
    assert store.find_run_ids("r", 5) == ["r1", "r2", "r3"] and store.find_run_ids("3") == ["r3"]
    assert store.existing_run_ids(["r1", "zz"]) == {"r1"}
    assert [e.type for e in store.events("r1")] == ["workflow_started"]


def test_a_taken_run_id_raises_run_id_taken_and_writes_nothing(store: Any) -> None:
    started(store, "r1")
    with pytest.raises(RunIdTaken):
        store.create_run(make_run("r1", tag="other"), [(T0, "workflow_started", None, {})])
    assert store.get_run("r1").tag == "order" and store.count_events("r1") == 1


def test_an_idempotency_key_returns_the_run_it_names(store: Any) -> None:
    first, created = store.create_run(
        make_run("r1", idempotency_key="k"), [(T0, "workflow_started", None, {})]
    )
    again, created_again = store.create_run(
        make_run("r2", idempotency_key="k"), [(T0, "workflow_started", None, {})]
    )
    assert created and not created_again and again.id == "r1"
    assert store.get_run("r2") is None
    _, other_tag = store.create_run(make_run("r3", tag="refund", idempotency_key="k"), [])
    assert other_tag  # keys are per workflow


def test_run_fields_metadata_cancel_and_delete(store: Any) -> None:
    started(store, "r1")
    store.set_run_fields(
        "r1", {"state": {"x": 1}, "phase": "main"}, [(T0 + 1, "checkpoint_created", None, None)]
    )
    run = store.get_run("r1")
    assert run.state == {"x": 1} and run.phase == "main" and store.count_events("r1") == 2
    store.set_metadata("r1", {"team": "blue"})
    assert store.get_run("r1").metadata == {"team": "blue"}
    cancelled = store.request_cancel("r1", "operator", T0 + 2)
    assert cancelled.cancel_requested == "operator" and store.get_run("r1").ready_at == T0 + 2
    assert store.cancel_requests(["r1", "x"]) == {"r1": "operator"}
    store.delete_run("r1")
    assert store.get_run("r1") is None and store.events("r1") == []


# -- leases and claims ------------------------------------------------------------------------


def test_claims_take_due_runs_in_due_order_once(store: Any) -> None:
    started(store, "late", ready_at=T0 + 5)
    started(store, "first", ready_at=T0 - 2)
    started(store, "second", ready_at=T0 - 1, tag="refund")
    started(store, "future", ready_at=T0 + 100)
    claimed = store.claim_ready("w1", T0 + 10, 30.0, 2)
    assert [r.id for r in claimed] == ["first", "second"]
    assert all(r.owner == "w1" and r.lease_expires_at == T0 + 40 for r in claimed)
    stored = store.get_run("first")
    assert (stored.owner, stored.status, stored.started_at) == ("w1", RunStatus.RUNNING, T0 + 10)
    assert [r.id for r in store.claim_ready("w2", T0 + 10, 30.0, 5)] == [
        "late"
    ]  # held ones are skipped
    assert store.claim_ready("w2", T0 + 10, 30.0, 5, tags=["refund"]) == []
    assert store.claim_run("first", "w2", T0 + 11, 30.0) is None  # a live lease


def test_a_finish_asked_to_claim_the_next_due_run_in_its_transaction(store: Any) -> None:
    started(store, "a", ready_at=T0 - 3)
    started(store, "b", ready_at=T0 - 2, tag="refund")
    started(store, "c", ready_at=T0 - 1)
    (first,) = store.claim_ready("w1", T0, 30.0, 1)
    store.claim_on_finish("elsewhere", "w1", lambda: T0 + 5, 30.0)
    assert store.finish_run(first.id, first.lease, {"status": "completed"}, [])
    assert store.take_finish_claim() is None  # asked for another run's finish: nothing taken
    (second,) = store.claim_ready("w1", T0, 30.0, 1)
    store.claim_on_finish(second.id, "w1", lambda: T0 + 5, 30.0, ["order"])
    assert store.finish_run(second.id, second.lease, {"status": "completed"}, [])
    (following,) = store.take_finish_claim()
    assert (following.id, following.owner, following.lease_expires_at) == ("c", "w1", T0 + 35)
    assert following.lease and following.lease not in (first.lease, second.lease)
    stored = store.get_run("c")
    assert (stored.owner, stored.lease, stored.status) == ("w1", following.lease, RunStatus.RUNNING)
    assert store.take_finish_claim() is None  # collected once
    store.claim_on_finish("c", "w1", lambda: T0 + 6, 30.0, ["order"])
    assert store.finish_run("c", "not-the-lease", {"status": "completed"}, []) is False
    assert store.take_finish_claim() is None  # no finish, no claim
    store.claim_on_finish("c", "w1", lambda: T0 + 6, 30.0, ["order"])
    assert store.finish_run("c", following.lease, {"status": "completed"}, [])
    assert store.take_finish_claim() == []  # finished; no due run of that tag was left


def test_an_expired_lease_is_taken_over_and_the_old_owner_is_fenced_out(store: Any) -> None:
    started(store, "r1")
    (first,) = store.claim_ready("w1", T0, 30.0, 1)
    assert store.claim_ready("w2", T0 + 29, 30.0, 1) == []
    assert (
        store.claim_ready("w2", T0 + 31, 30.0, 1, stale_leases=[]) == []
    )  # not yet watched going stale
    taken = store.claim_ready("w2", T0 + 31, 30.0, 1, stale_leases=[first.lease])
    assert [(r.id, r.owner, r.taken_from) for r in taken] == [("r1", "w2", "w1")] and taken[
        0
    ].lease != first.lease
    assert store.finish_run("r1", first.lease, {"status": "completed"}, []) is False
    with pytest.raises(LeaseLost):
        store.commit_step(step("r1", 0), [], lease=first.lease)
    with pytest.raises(LeaseLost):  # nor its events, nor the state it carried
        store.commit_step(
            step("r1", 0), [(T0, "step_completed", "charge", None)], {"n": 1}, lease=first.lease
        )
    assert store.count_events("r1") == 1 and store.get_run("r1").state == {}
    with pytest.raises(LeaseLost):
        store.set_run_fields("r1", {"phase": "x"}, lease=first.lease)
    assert store.renew_leases({"r1": first.lease}, T0 + 32, 30.0) == {"r1"}
    assert store.get_run("r1").status == RunStatus.RUNNING and store.load_journal("r1") == {}
    store.commit_step(step("r1", 0), [], lease=taken[0].lease)
    assert store.finish_run("r1", taken[0].lease, {"status": "completed"}, []) is True


def test_a_dead_owner_loses_its_lease_at_once(store: Any) -> None:
    started(store, "r1")
    store.claim_ready("host:1:a", T0, 30.0, 1)
    assert store.owners_on_host("host") == ["host:1:a"]
    assert [
        r.id for r in store.claim_ready("host:2:b", T0 + 1, 30.0, 1, dead_owners=["host:1:a"])
    ] == ["r1"]
    assert (
        store.claim_run("r1", "host:3:c", T0 + 2, 30.0, dead_owners=["host:2:b"]).owner
        == "host:3:c"
    )


def test_renewals_keep_a_lease_and_release_gives_it_back(store: Any) -> None:
    started(store, "r1")
    (claimed,) = store.claim_ready("w1", T0, 30.0, 1)
    assert store.renew_leases({"r1": claimed.lease}, T0 + 25, 30.0) == set()
    assert store.claim_ready("w2", T0 + 40, 30.0, 1) == []
    store.set_current_steps({"r1": ("charge", claimed.lease)})
    assert store.get_run("r1").current_step == "charge"
    store.release_run("r1", claimed.lease)
    assert [r.id for r in store.claim_ready("w2", T0 + 41, 30.0, 1)] == ["r1"]


def test_one_renewal_extends_every_current_lease_and_names_the_stale_ones(store: Any) -> None:
    for run_id in ("r1", "r2", "r3"):
        started(store, run_id, ready_at=T0 + int(run_id[1]))
    first, second, third = store.claim_ready("w1", T0 + 3, 30.0, 3)
    assert [r.id for r in (first, second, third)] == ["r1", "r2", "r3"]
    assert len({first.lease, second.lease, third.lease}) == 3  # a fresh token per run
    store.release_run("r2", second.lease)
    held = {"r1": first.lease, "r2": second.lease, "r3": third.lease}
    assert store.renew_leases(held, T0 + 20, 30.0) == {"r2"}
    assert [store.get_run(r).lease_expires_at for r in ("r1", "r3")] == [T0 + 50, T0 + 50]
    assert store.get_run("r2").lease_expires_at is None


def test_suspend_wakes_at_once_for_a_signal_that_arrived_meanwhile(store: Any) -> None:
    started(store, "r1")
    (claimed,) = store.claim_ready("w1", T0, 30.0, 1)
    store.add_signal("r1", "approve", {"ok": True}, T0 + 1)
    ready = store.suspend_run(
        "r1", claimed.lease, {"kind": "signal", "signals": ["approve"]}, None, {"s": 1}, T0 + 2, []
    )
    assert ready == T0 + 2
    run = store.get_run("r1")
    assert run.owner is None and run.ready_at == T0 + 2 and run.state == {"s": 1}
    with pytest.raises(LeaseLost):
        store.suspend_run(
            "r1", claimed.lease, None, T0 + 9, None, T0 + 3, []
        )  # not the owner any more


def test_a_child_that_ends_wakes_its_waiting_parent(store: Any) -> None:
    started(store, "parent")
    (claimed,) = store.claim_ready("w1", T0, 30.0, 1)
    store.suspend_run(
        "parent", claimed.lease, {"kind": "child", "child_id": "kid"}, None, None, T0 + 1, []
    )
    assert store.get_run("parent").ready_at is None
    store.wake_parent("parent", T0 + 5)
    assert store.get_run("parent").ready_at == T0 + 5
    assert store.next_ready_at() == T0 + 5 and store.next_claim_at() == T0 + 5


def test_rewind_only_while_the_run_is_as_expected(store: Any) -> None:
    started(store, "r1", status=RunStatus.FAILED)
    store.commit_step(step("r1", 0), [])
    store.commit_step(step("r1", 1), [])
    assert store.rewind_run("r1", [1], ("running", None), {"status": "pending"}, []) is False
    assert store.rewind_run(
        "r1",
        [1],
        ("failed", None),
        {"status": "pending", "ready_at": T0},
        [(T0, "workflow_resumed", None, None)],
    )
    assert list(store.load_journal("r1")) == [0] and store.get_run("r1").status == RunStatus.PENDING


# -- journal --------------------------------------------------------------------------------


def test_a_journal_position_is_recorded_once(store: Any) -> None:
    started(store, "r1")
    store.commit_step(
        step("r1", 0), [(T0, "step_completed", "charge", {"output": 1})], {"total": 5}
    )
    with pytest.raises(StepTaken):
        store.commit_step(step("r1", 0, tag="other"), [])
    with pytest.raises(StepTaken):
        store.commit_step(
            step("r1", 0, tag="other"), [(T0, "step_completed", "other", None)], {"total": 6}
        )
    journal = store.load_journal("r1")
    assert journal[0].tag == "charge" and journal[0].output == {"ok": 0}
    assert store.get_run("r1").state == {"total": 5} and store.count_events("r1") == 2


def test_journal_rows_change_attempts_are_kept_and_rows_can_go(store: Any) -> None:
    started(store, "r1")
    waiting = StepRecord(
        run_id="r1", seq=0, kind=OpKind.SLEEP, tag="nap", status=StepStatus.WAITING, wake_at=T0 + 5
    )
    store.commit_step(waiting, [])
    store.update_op(
        "r1",
        0,
        {"status": "completed", "output": {"slept": 5}},
        [(T0 + 5, "sleep_completed", None, None)],
        run_fields={"phase": "after"},
    )
    assert (
        store.load_journal("r1")[0].output == {"slept": 5} and store.get_run("r1").phase == "after"
    )
    store.record_attempt(Attempt("r1", 1, 1, T0, 12, {"message": "boom"}), [])
    store.record_attempt(Attempt("r1", 1, 2, T0 + 1, 7, None), [])
    assert [(a.attempt, a.error) for a in store.attempts("r1", 1)] == [
        (1, {"message": "boom"}),
        (2, None),
    ]
    store.commit_step(step("r1", 1), [])
    store.delete_ops("r1", [1])
    assert list(store.load_journal("r1")) == [0] and store.attempts("r1", 1) == []


# -- events ------------------------------------------------------------------------------------


def test_events_are_ordered_filtered_and_paged(store: Any) -> None:
    started(store, "r1")
    store.append_events(
        "r1",
        [
            (T0 + i, "step_completed" if i % 2 else "step_started", "s", {"i": i})
            for i in range(1, 6)
        ],
    )
    events = store.events("r1")
    assert [e.data.get("i") for e in events] == [None, 1, 2, 3, 4, 5]
    assert [e.data["i"] for e in store.events("r1", types=["step_completed"])] == [1, 3, 5]
    assert [e.data["i"] for e in store.events("r1", after_id=events[2].id, limit=2)] == [3, 4]
    assert store.count_events("r1") == 6


# -- signals and hooks -------------------------------------------------------------------------


def test_signals_are_delivered_oldest_first_each_once(store: Any) -> None:
    started(store, "r1")
    for i in range(3):
        store.add_signal("r1", "item", {"i": i}, T0 + i)
    buffered = [e for e in store.events("r1") if e.type == "signal_buffered"]
    assert len(buffered) == 3
    for seq in range(3):
        store.commit_step(StepRecord("r1", seq, OpKind.SIGNAL, "item", StepStatus.WAITING), [])
    got = [
        store.consume_signal("r1", seq, ["item"], T0 + 10, "signal_received").payload["i"]
        for seq in range(3)
    ]
    assert got == [0, 1, 2]
    assert store.consume_signal("r1", 9, ["item"], T0 + 10, "signal_received") is None
    assert store.load_journal("r1")[1].output == {"signal": "item", "payload": {"i": 1}}
    assert [s.consumed_seq for s in store.signals("r1")] == [0, 1, 2]


def test_a_signal_after_the_deadline_is_refused_and_stays_buffered(store: Any) -> None:
    started(store, "r1")
    store.commit_step(StepRecord("r1", 0, OpKind.SIGNAL, "approve", StepStatus.WAITING), [])
    store.add_signal("r1", "approve", {"late": True}, T0 + 20)
    assert (
        store.consume_signal("r1", 0, ["approve"], T0 + 21, "signal_received", deadline=T0 + 10)
        is None
    )
    late = store.expire_wait(
        "r1", 0, ["approve"], T0 + 10, T0 + 21, [(T0 + 21, "signal_timed_out", None, None)]
    )
    assert [s.payload for s in late] == [{"late": True}]
    assert store.load_journal("r1")[0].status == StepStatus.FAILED
    assert [e.type for e in store.events("r1")][-1] == "signal_refused"
    assert store.signals("r1")[0].consumed_seq is None


def test_a_signal_to_an_ended_run_is_not_buffered(store: Any) -> None:
    started(store, "r1", status=RunStatus.COMPLETED)
    assert store.add_signal("r1", "x", 1, T0).status == RunStatus.COMPLETED
    assert store.signals("r1") == [] and store.add_signal("missing", "x", 1, T0) is None


def test_a_hook_token_is_used_once_and_buffers_its_signal(store: Any) -> None:
    started(store, "r1")
    store.create_hook("tok", "r1", 0, "approval", {"who": "ops"}, T0)
    store.create_hook(
        "tok", "r1", 0, "approval", {"who": "ops"}, T0
    )  # a replay creates it again: ignored
    assert [h["token"] for h in store.open_hooks("r1")] == ["tok"]
    run, name, refusal = store.deliver_hook("tok", {"ok": 1}, T0 + 1)
    assert (run.id, name, refusal) == ("r1", "approval", None)
    assert [(s.name, s.payload) for s in store.signals("r1")] == [("hook:tok", {"ok": 1})]
    assert store.deliver_hook("tok", {"ok": 2}, T0 + 2)[2] == "hook token was already used"
    assert (
        store.deliver_hook("nope", {}, T0)[2] == "unknown hook token"
        and store.open_hooks("r1") == []
    )


# -- schedules ---------------------------------------------------------------------------------


def test_a_due_schedule_fires_once_by_compare_and_set(store: Any) -> None:
    schedule = {
        "id": "s1",
        "tag": "report",
        "input": {"a": 1},
        "kind": "cron",
        "cron": "* * * * *",
        "next_fire_at": T0,
        "created_at": T0,
        "options": {"x": 1},
    }
    store.save_schedule(schedule)
    store.save_schedule({**schedule, "paused": True, "id": "s2"})
    assert [s["id"] for s in store.list_schedules()] == ["s1", "s2"]
    assert [s["id"] for s in store.due_schedules(T0 + 1)] == ["s1"]
    assert store.advance_schedule("s1", T0, T0 + 60, "run-a", [], T0 + 1) is True
    assert (
        store.advance_schedule("s1", T0, T0 + 60, "run-b", [], T0 + 1) is False
    )  # someone else fired it
    got = store.get_schedule("s1")
    assert (got["last_run_id"], got["fire_count"], got["next_fire_at"], got["options"]) == (
        "run-a",
        1,
        T0 + 60,
        {"x": 1},
    )
    store.save_schedule({**got, "paused": True})
    assert store.get_schedule("s1")["paused"] is True and store.due_schedules(T0 + 100) == []
    assert store.delete_schedule("s1") is True and store.delete_schedule("s1") is False


# -- topics and quotas -------------------------------------------------------------------------


def test_topic_offsets_are_gap_free_per_topic(store: Any) -> None:
    assert [store.append_message("local", "orders", {"n": i}, "r1", T0) for i in range(3)] == [
        0,
        1,
        2,
    ]
    assert store.append_message("local", "refunds", "x", None, T0) == 0
    assert [m["message"]["n"] for m in store.read_messages("local", "orders", 1)] == [1, 2]
    assert [(t["topic"], t["messages"]) for t in store.list_topics()] == [
        ("orders", 3),
        ("refunds", 1),
    ]


def test_a_quota_bucket_refills_with_time(store: Any) -> None:
    takes = [store.take_quota("api", "k", 2, 10.0, T0)[0] for _ in range(3)]
    assert takes == [True, True, False]
    assert store.take_quota("api", "k", 2, 10.0, T0 + 5)[0] is True  # one token back after 5 s
    assert store.take_quota("api", "other", 2, 10.0, T0)[0] is True


# -- operations ----------------------------------------------------------------------------------


def test_prune_removes_ended_runs_and_their_rows(store: Any) -> None:
    started(store, "old", status=RunStatus.COMPLETED, ended_at=T0)
    started(store, "new", status=RunStatus.COMPLETED, ended_at=T0 + 100)
    started(store, "open")
    assert [
        r[0]
        for r in store.prune_batch(
            ended_before=T0 + 50, statuses=None, tags=None, limit=10, dry_run=True
        )
    ] == ["old"]
    assert [
        r[0] for r in store.prune_batch(ended_before=T0 + 50, statuses=None, tags=None, limit=10)
    ] == ["old"]
    assert (
        store.get_run("old") is None
        and store.events("old") == []
        and store.get_run("new") is not None
    )


def test_export_and_import_carry_a_run_between_stores(store: Any, tmp_path: Any) -> None:
    started(store, "r1", status=RunStatus.COMPLETED, output={"total": 3})
    store.commit_step(step("r1", 0), [])
    store.save_definition("order", "v1", "Order", "wf.py", {"steps": []})
    bundle = store.export_rows("r1")
    other = open_store(str(tmp_path / "other.db"))
    other.import_rows([bundle], store.list_definitions())
    assert other.get_run("r1").output == {"total": 3} and other.load_journal("r1")[0].output == {
        "ok": 0
    }
    store.delete_run("r1")
    store.import_rows([other.export_rows("r1")], [])
    assert store.get_run("r1").output == {"total": 3} and [e.type for e in store.events("r1")] == [
        "workflow_started"
    ]
    other.close()


def test_a_broken_constraint_is_a_store_error_and_writes_nothing(store: Any) -> None:
    """A write that breaks a unique index on a path that does not expect it: a ductape
    `StoreError` (never the driver's own exception), the transaction rolled back."""
    started(store, "r1", idempotency_key="k1")
    started(store, "r2", idempotency_key="k2")
    with pytest.raises(StoreError):
        store.set_run_fields("r2", {"idempotency_key": "k1"}, [(T0, "renamed", None, None)])
    assert store.get_run("r2").idempotency_key == "k2"
    assert [e.type for e in store.events("r2")] == ["workflow_started"]
    store.set_run_fields("r2", {"idempotency_key": "k3"})  # the store is still usable
    assert store.get_run("r2").idempotency_key == "k3"


def test_an_import_belongs_to_the_importing_project(location: str) -> None:
    """`ductape import` into another project's store: the runs and the definitions it carries
    are that project's, not the exporter's (nor the unscoped '')."""
    away, home = open_store(location, namespace="away"), open_store(location, namespace="home")
    try:
        started(away, "r1", version="v1")
        away.save_definition("order", "v1", "Order", "wf.py", {"steps": []})
        bundle, definitions = away.export_rows("r1"), away.list_definitions()
        away.delete_run("r1")
        home.import_rows([bundle], definitions)
        assert home.get_run("r1") is not None and away.get_run("r1") is None
        assert [d["version"] for d in home.list_definitions("order")] == ["v1"]
        assert home.get_definition("order", "v1") is not None
    finally:
        away.close()
        home.close()


def test_queue_figures(store: Any) -> None:
    started(store, "due")
    started(store, "held")
    store.claim_run("held", "w1", T0, 30.0)
    started(store, "later", ready_at=None)
    stats = store.queue_stats(T0 + 1)
    assert (stats["queued"], stats["executing"], stats["waiting"]) == (1.0, 1.0, 1.0)
    assert stats["oldest_queued_seconds"] == 1.0


def test_the_feed_lists_every_change_in_order_once_enabled(store: Any) -> None:
    store.enable_feed()
    store.enable_feed()  # idempotent
    start = store.feed_position()
    started(store, "r1")
    (claimed,) = store.claim_ready("w1", T0, 30.0, 1)
    store.commit_step(step("r1", 0), [(T0, "step_completed", "charge", None)], lease=claimed.lease)
    store.finish_run(
        "r1",
        claimed.lease,
        {"status": "completed", "output": {"total": 1}},
        [(T0 + 2, "workflow_completed", None, None)],
    )
    rows = store.read_feed(start)
    kinds = [(r.kind, r.status or r.event_type or r.step_tag) for r in rows]
    assert kinds == [
        ("status", "pending"),
        ("event", "workflow_started"),
        ("status", "running"),
        ("step", "charge"),
        ("event", "step_completed"),
        ("status", "completed"),
        ("event", "workflow_completed"),
    ]
    assert rows[-1].run_output == {"total": 1}
    assert store.read_feed(rows[-1].id) == [] and store.feed_position() == rows[-1].id


# -- what the later issues added: poison runs, lease watching, the outbox, consumer offsets ----------


def test_an_unloadable_run_is_deferred_then_failed_for_good(store: Any) -> None:
    started(store, "r1")
    (claimed,) = store.claim_ready("w1", T0, 30.0, 1)
    store.defer_unloadable("r1", claimed.lease, "No module named 'gone'", T0, T0 + 5, [])
    run = store.get_run("r1")
    assert (run.owner, run.ready_at, run.load_error, run.load_attempts) == (
        None,
        T0 + 5,
        "No module named 'gone'",
        1,
    )
    (again,) = store.claim_ready("w1", T0 + 6, 30.0, 1)
    store.defer_unloadable("r1", again.lease, "still gone", T0 + 6, None, [])
    run = store.get_run("r1")
    assert run.status == RunStatus.FAILED and run.error["code"] == "WORKFLOW_NOT_LOADABLE"


def test_expired_leases_are_listed_for_watching(store: Any) -> None:
    started(store, "r1")
    (claimed,) = store.claim_ready("w1", T0, 30.0, 1)
    assert store.expired_leases(T0 + 10) == []
    assert store.expired_leases(T0 + 31) == [("r1", claimed.lease, T0 + 30)]


def test_the_outbox_hands_each_message_to_one_sender_until_sent(store: Any) -> None:
    from ductape_cli.store.sqlite_outbox import OutboxMessage

    started(store, "r1")
    message = OutboxMessage("r1:send", "events", "orders", {"n": 1}, "r1", "send", T0)
    store.commit_step(step("r1", 0), [], outbox=[message])
    store.commit_step(step("r1", 1), [], outbox=[message])  # the same id again: one message
    assert [m.message_id for m in store.claim_outbox("host:1:a", T0, 60)] == ["r1:send"]
    assert store.claim_outbox("host:2:b", T0 + 1, 60) == []
    assert store.outbox_senders_on_host("host") == ["host:1:a"]
    assert [
        m.message_id for m in store.claim_outbox("host:2:b", T0 + 1, 60, dead_owners=["host:1:a"])
    ] == ["r1:send"]
    store.outbox_failed("r1:send", "ConnectionError: down", retry_at=T0 + 20)
    assert store.claim_outbox("host:2:b", T0 + 10, 60) == []
    assert store.outbox_status() == [
        {
            "broker": "events",
            "topic": "orders",
            "pending": 1,
            "sent": 0,
            "last_error": "ConnectionError: down",
        }
    ]
    (retried,) = store.claim_outbox("host:2:b", T0 + 21, 60)
    assert retried.attempts == 1
    store.outbox_sent(["r1:send"], T0 + 22)
    assert (
        store.claim_outbox("host:3:c", T0 + 1e6, 60) == [] and store.outbox_status()[0]["sent"] == 1
    )


def test_consumer_offsets_only_move_forward(store: Any) -> None:
    assert store.consumer_offset("trigger", "local", "orders") == 0
    store.set_consumer_offset("trigger", "local", "orders", 5)
    store.set_consumer_offset(
        "trigger", "local", "orders", 3
    )  # a late acknowledgement of older messages
    assert store.consumer_offset("trigger", "local", "orders") == 5
    assert store.append_message("local", "orders", {"n": 1}, None, T0, message_id="m-1") == 0
    assert (
        store.append_message("local", "orders", {"n": 1}, None, T0, message_id="m-1") == 0
    )  # deduplicated


def test_backend_facts(store: Any) -> None:
    started(store, "r1")
    assert store.backend in ("sqlite", "postgresql")
    assert store.count_rows("runs") == 1 and store.count_rows("events") == 1
    with pytest.raises(ValueError):
        store.count_rows("runs; DROP TABLE runs")
    (claimed,) = store.claim_ready("w1", T0, 30.0, 1)
    assert store.next_claim_at() == T0 + 30  # held: claimable again when its lease expires
    store.release_run("r1", claimed.lease)
    assert store.next_claim_at() == T0


def test_a_store_with_notifications_wakes_listeners_on_any_connection(
    store: Any, opened: Any
) -> None:
    """PostgreSQL: a queued run, a signal to a waiting run and a released lease each wake a listener
    (on its own connection) at once. SQLite has no notifications: `listen` says so with None."""
    import threading

    woke = threading.Event()
    stop = store.listen(woke.set)
    if store.backend == "sqlite":
        assert stop is None
        return
    try:
        assert woke.wait(10)  # once on connecting: whatever was queued before
        other = opened()
        woke.clear()
        started(other, "queued")
        assert woke.wait(10)
        (claimed,) = other.claim_ready("w1", T0, 30.0, 1)
        woke.clear()
        other.release_run("queued", claimed.lease)
        assert woke.wait(10)
        (claimed,) = other.claim_ready("w1", T0, 30.0, 1)
        other.suspend_run(
            "queued", claimed.lease, {"kind": "signal", "signals": ["go"]}, None, None, T0 + 1, []
        )
        woke.clear()
        other.add_signal("queued", "go", {}, T0 + 2)
        assert woke.wait(10)
    finally:
        stop()


def test_a_finish_records_the_runs_last_step_in_the_same_write(store: Any) -> None:
    from ductape_cli.store.protocol import StepWrite

    started(store, "r1")
    (run,) = store.claim_ready("w1", T0, 30.0, 1)
    store.commit_step(step("r1", 0, "first"), [], lease=run.lease)
    last = StepWrite(step("r1", 1, "last"), [(T0 + 1, "log", "last", {"m": 1})], {"k": 2})
    fields = {"status": "completed", "output": {"done": True}, "owner": None}
    # Fenced: another owner's lease writes neither the step nor the end.
    assert store.finish_run("r1", "not-the-lease", fields, [], step=last) is False
    assert sorted(store.load_journal("r1")) == [0]
    assert store.get_run("r1").status == RunStatus.RUNNING
    assert store.finish_run(
        "r1", run.lease, fields, [(T0 + 2, "workflow_completed", None, {})], step=last
    )
    journal = store.load_journal("r1")
    assert [(r.tag, r.output) for r in journal.values()] == [
        ("first", {"ok": 0}),
        ("last", {"ok": 1}),
    ]
    ended = store.get_run("r1")
    assert (ended.status, ended.output, ended.state, ended.lease) == (
        RunStatus.COMPLETED,
        {"done": True},
        {"k": 2},
        None,
    )
    assert [e.type for e in store.events("r1")][-2:] == ["log", "workflow_completed"]


def test_a_finish_whose_last_step_position_is_taken_writes_nothing(store: Any) -> None:
    from ductape_cli.store.protocol import StepWrite

    started(store, "r1")
    (run,) = store.claim_ready("w1", T0, 30.0, 1)
    store.commit_step(step("r1", 0), [], lease=run.lease)
    with pytest.raises(StepTaken):
        store.finish_run(
            "r1", run.lease, {"status": "completed"}, [], step=StepWrite(step("r1", 0))
        )
    assert store.get_run("r1").status == RunStatus.RUNNING
