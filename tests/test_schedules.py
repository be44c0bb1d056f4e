"""Dispatch and schedules: fire times (DST-correct), bad input, exactly-once firing, catch-up."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ductape_cli.engine import schedules

NY = ZoneInfo("America/New_York")

JOB = """
    from ductape_cli import workflow

    @workflow("report")
    async def report(ctx):
        return await ctx.step("make", lambda: {"type": ctx.input.type})

    @workflow("flaky-report")
    async def flaky(ctx):
        await ctx.step("fail", lambda: 1 / 0)
"""


def local(ts: float) -> str:
    return datetime.fromtimestamp(ts, NY).isoformat()


def test_cron_across_spring_forward_in_new_york() -> None:
    start = datetime(2027, 3, 12, 12, tzinfo=NY).timestamp()
    times = [
        local(t) for t in schedules.next_fire_times("30 2 * * *", "America/New_York", start, 4)
    ]
    # 02:30 does not exist on 14 March: it fires just after the change, once.
    assert times == [
        "2027-03-13T02:30:00-05:00",
        "2027-03-14T03:30:00-04:00",
        "2027-03-15T02:30:00-04:00",
        "2027-03-16T02:30:00-04:00",
    ]
    nine = [local(t) for t in schedules.next_fire_times("0 9 * * *", "America/New_York", start, 3)]
    assert nine == [
        "2027-03-13T09:00:00-05:00",
        "2027-03-14T09:00:00-04:00",
        "2027-03-15T09:00:00-04:00",
    ]


def test_cron_across_fall_back_fires_the_repeated_hour_once() -> None:
    start = datetime(2027, 11, 5, 12, tzinfo=NY).timestamp()
    times = [
        local(t) for t in schedules.next_fire_times("30 1 * * *", "America/New_York", start, 3)
    ]
    assert times == [
        "2027-11-06T01:30:00-04:00",
        "2027-11-07T01:30:00-04:00",
        "2027-11-08T01:30:00-05:00",
    ]


def test_dispatch_prints_job_and_next_fire_times(project, cli) -> None:
    project.write("job", JOB)
    result = cli(
        "dispatch",
        "report",
        "--input",
        '{"type": "sales"}',
        "--cron",
        "0 0 * * *",
        "--timezone",
        "America/New_York",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    view = result.json()
    assert view["job_id"].startswith("job_") and len(view["next_fire_times"]) == 3
    assert all(
        t.endswith(("-05:00", "-04:00")) and "T00:00:00" in t for t in view["next_fire_times"]
    )
    listed = cli("schedules", "list", "--json").json()
    assert [s["job_id"] for s in listed] == [view["job_id"]]
    assert cli("schedules", "pause", view["job_id"], "--json").json()["paused"] is True
    assert cli("schedules", "resume", view["job_id"], "--json").json()["paused"] is False
    assert "next:" in cli("schedules", "show", view["job_id"]).stdout
    assert cli("schedules", "delete", view["job_id"]).exit_code == 0
    assert cli("schedules", "list", "--json").json() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cron", "61 * * * *"], "invalid cron expression"),
        (["--cron", "0 0 * * *", "--timezone", "Mars/Olympus"], "unknown time zone"),
        (["--at", "2001-01-01T00:00"], "in the past"),
        (["--at", "next tuesday"], "invalid --at"),
        (["--in", "soon"], "invalid --in"),
        ([], "exactly one of --at, --in or --cron"),
        (["--in", "1h", "--cron", "0 0 * * *"], "exactly one of"),
    ],
)
def test_bad_dispatch_is_exit_2_and_stores_nothing(project, cli, args, message) -> None:
    project.write("job", JOB)
    result = cli("dispatch", "report", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert cli("schedules", "list", "--json").json() == []


def test_unknown_schedule_and_workflow(project, cli) -> None:
    project.write("job", JOB)
    assert cli("schedules", "show", "job_nope").exit_code == 2
    assert "unknown workflow" in cli("dispatch", "nope", "--in", "1s").stderr


def test_a_due_time_fires_once_however_many_workers_poll(project) -> None:
    project.write("job", JOB)
    engine = project.engine()
    view = schedules.create(engine, "report", {"type": "x"}, in_="1s")
    later = engine.clock.now() + 2
    first = schedules.fire_due(engine, later)
    second = schedules.fire_due(project.engine(), later)
    assert len(first) == 1 and second == []
    runs = engine.list_runs(schedule_id=view["job_id"])
    assert len(runs) == 1 and runs[0].status == "pending"
    assert engine.store.get_schedule(view["job_id"])["next_fire_at"] is None


def test_a_lost_race_after_the_run_started_still_advances_once(project) -> None:
    project.write("job", JOB)
    engine = project.engine()
    view = schedules.create(engine, "report", {}, cron="*/5 * * * *")
    schedule = engine.store.get_schedule(view["job_id"])
    now = schedule["next_fire_at"] + 1
    # A worker that started the run and died before advancing: the next one must not start a second run.
    run_id = f"{schedule['id']}-{int(schedule['next_fire_at'])}"
    engine.start("report", {}, workflow_id=run_id, detach=True, schedule_id=schedule["id"])
    schedules.fire_due(engine, now)
    assert [r.id for r in engine.list_runs(schedule_id=schedule["id"])] == [run_id]
    assert engine.store.get_schedule(schedule["id"])["next_fire_at"] > now


def test_catch_up_fires_one_run_and_reports_the_skipped_times(project) -> None:
    project.write("job", JOB)
    engine = project.engine()
    view = schedules.create(engine, "report", {}, cron="*/5 * * * *")
    first_due = engine.store.get_schedule(view["job_id"])["next_fire_at"]
    lines = schedules.fire_due(engine, first_due + 3600)  # an hour with no worker
    assert "skipped 12 earlier due times" in lines[0]
    runs = engine.list_runs(schedule_id=view["job_id"])
    assert len(runs) == 1 and len(runs[0].lineage["missed"]) == 12
    assert len(engine.store.get_schedule(view["job_id"])["missed"]) == 12


def test_worker_fires_a_dispatched_job_and_retries_a_failed_run(project, cli) -> None:
    project.write("job", JOB)
    engine = project.engine()
    from ductape_cli.engine.worker import Worker

    view = schedules.create(engine, "report", {"type": "daily"}, in_="1s")
    engine.store.conn.execute(
        "UPDATE schedules SET next_fire_at = 0 WHERE id = ?", (view["job_id"],)
    )
    Worker(engine).run(once=True)
    runs = cli("list", "--schedule", view["job_id"], "--json").json()
    assert [r["status"] for r in runs] == ["completed"]

    flaky = schedules.create(engine, "flaky-report", {}, in_="1s", retries=2)
    engine.store.conn.execute(
        "UPDATE schedules SET next_fire_at = 0 WHERE id = ?", (flaky["job_id"],)
    )
    Worker(engine).run(once=True)
    statuses = sorted(str(r.status) for r in engine.list_runs(schedule_id=flaky["job_id"]))
    assert statuses == ["failed", "failed", "failed"]  # the first run and two retries
