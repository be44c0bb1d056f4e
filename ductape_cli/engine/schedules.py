"""Dispatch and schedules: one-shot (`--at`, `--in`) and cron jobs that start runs.

Cron times are computed on the local wall clock of the schedule's time zone:
a time that falls in a spring-forward gap fires just after the change, a time
repeated by a fall-back fires once (its first occurrence).

Firing is exactly once per due time: the run id is derived from the schedule
and the due time, so a second worker (or a retry after a crash) finds the run
already there; only then is the schedule advanced, with a compare-and-set.

Catch-up policy: when no worker ran over several due times, one run fires (for
the latest due time) and the skipped times are recorded on the schedule
(`missed`) and the run (`lineage.missed`).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ductape_cli.durations import parse_duration
from ductape_cli.errors import InvalidInput, InvalidState, ScheduleNotFound

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine
    from ductape_cli.models import Schedule

MAX_CATCH_UP = (
    10_000  # due times counted when catching up, so a forgotten minutely job cannot spin forever
)


def zone(name: str | None) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {name!r}; use an IANA name such as America/New_York"
        ) from None


CRON_FIELDS = (  # name, low, high, names accepted for values
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    (
        "month",
        1,
        12,
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    ),
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


def check_cron(expression: str) -> None:
    """A cron expression croniter accepts; otherwise the bad field and its range, in one line."""
    from croniter import croniter

    if croniter.is_valid(expression):
        return
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidInput(
            f"invalid cron expression {expression!r}: expected 5 fields (minute hour day-of-month month "
            f"day-of-week), got {len(fields)}, e.g. '0 0 * * *'"
        )
    for (name, low, high, names), text in zip(CRON_FIELDS, fields, strict=True):
        problem = _cron_field_problem(text, low, high, names)
        if problem:
            raise InvalidInput(f"invalid cron expression {expression!r}: {name} {problem}")
    raise InvalidInput(f"invalid cron expression {expression!r}; e.g. '0 0 * * *'")


def _cron_field_problem(text: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    """Why one cron field is out of range or malformed (None when it looks fine)."""
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            return f"step {step!r} must be a positive number"
        if base in ("*", "?"):
            continue
        for bound in base.split("-", 1):
            value = (
                names.index(bound.lower()) + (1 if low == 1 else 0)
                if bound.lower() in names
                else None
            )
            if value is None:
                if not bound.isdigit():
                    return f"{bound!r} is not a number" + (
                        f" or a name ({', '.join(names)})" if names else f" ({low}-{high})"
                    )
                value = int(bound)
            if not low <= value <= high:
                return f"{value} is out of range {low}-{high}"
    return None


def next_fire_times(
    expression: str, tz_name: str | None, after: float, count: int = 1
) -> list[float]:
    """The next `count` fire times strictly after `after` (epoch seconds), DST-correct."""
    from croniter import croniter

    tz = zone(tz_name) or UTC
    local = datetime.fromtimestamp(after, tz).replace(tzinfo=None)
    iterator = croniter(expression, local)
    times: list[float] = []
    while len(times) < count:
        naive = iterator.get_next(datetime)
        moment = naive.replace(tzinfo=tz).timestamp()  # fold=0: the first of a repeated hour
        if moment > after and (not times or moment > times[-1]):
            times.append(moment)
    return times


def parse_at(text: str, tz_name: str | None, now: float) -> float:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"invalid --at {text!r}: use ISO 8601, e.g. 2026-12-01T09:00 or 2026-12-01T09:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(tz_name)) if tz_name else moment.astimezone()
    when = moment.timestamp()
    if when <= now:
        raise InvalidInput(f"--at {text} is in the past")
    return when


def create(
    engine: Engine,
    tag: str,
    input: Any,
    *,
    at: str | None = None,
    in_: str | None = None,
    cron: str | None = None,
    timezone: str | None = None,
    env: str | None = None,
    retries: int | None = None,
    timeout: str | None = None,
) -> dict[str, Any]:
    """Validate everything first, then store the schedule (nothing is written on bad input)."""
    if sum(x is not None for x in (at, in_, cron)) != 1:
        raise InvalidInput("give exactly one of --at, --in or --cron")
    engine.definition(tag)
    env = engine.config.check_env(env or engine.config.default_env)
    zone(timezone)
    if timeout is not None:
        parse_duration(timeout, what="timeout")
    if retries is not None and retries < 0:
        raise InvalidInput("--retries must be zero or more")
    now = engine.clock.now()
    schedule: Schedule = {
        "id": "job_" + secrets.token_hex(5),
        "tag": tag,
        "kind": "once",
        "input": input if input is not None else {},
        "env": env,
        "timezone": timezone,
        "created_at": now,
        "options": {"retries": retries or 0, "timeout": timeout},
        "paused": False,
        "fire_count": 0,
        "missed": [],
    }
    if cron is not None:
        check_cron(cron)
        schedule["kind"], schedule["cron"] = "cron", cron
        schedule["next_fire_at"] = next_fire_times(cron, timezone, now)[0]
    elif at is not None:
        schedule["run_at"] = schedule["next_fire_at"] = parse_at(at, timezone, now)
    else:
        delay = parse_duration(in_, what="--in") or 0
        if delay <= 0:
            raise InvalidInput("--in must be a positive duration, e.g. 30s or 1h")
        schedule["run_at"] = schedule["next_fire_at"] = now + delay / 1000
    engine.store.save_schedule(schedule)
    return describe(engine, schedule)


def describe(engine: Engine, schedule: Schedule, upcoming: int = 3) -> dict[str, Any]:
    view = dict(schedule)
    view["job_id"] = schedule["id"]
    view["scheduled_at"] = _iso(schedule.get("next_fire_at"), schedule.get("timezone"))
    times: list[float] = []
    following, cron = schedule.get("next_fire_at"), schedule.get("cron")
    if following is not None and cron is not None:
        times = [
            following,
            *next_fire_times(cron, schedule.get("timezone"), following, upcoming - 1),
        ]
    elif following is not None:
        times = [following]
    view["next_fire_times"] = [_iso(t, schedule.get("timezone")) for t in times]
    view["missed"] = [_iso(t, schedule.get("timezone")) for t in schedule.get("missed") or []]
    return view


def _iso(ts: float | None, tz_name: str | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, zone(tz_name) or UTC).isoformat(timespec="seconds")


def due_times(schedule: Schedule, now: float) -> tuple[list[float], float | None]:
    """Every due time up to `now` (for the catch-up report) and the next fire time after it."""
    first, cron = schedule.get("next_fire_at"), schedule.get("cron")
    if first is None:  # a one-off that fired (the store lists only schedules with a due time)
        return [], None
    if cron is None:
        return [first], None
    due = [first]
    cursor = first
    while len(due) < MAX_CATCH_UP:
        (following,) = next_fire_times(cron, schedule.get("timezone"), cursor)
        if following > now:
            return due, following
        due.append(following)
        cursor = following
    return due, next_fire_times(cron, schedule.get("timezone"), now)[0]


def fire_due(engine: Engine, now: float) -> list[str]:
    """Start a run for every due schedule; returns report lines."""
    store = engine.store
    lines = []
    for schedule in store.due_schedules(now):
        due, following = due_times(schedule, now)
        fire_at = due[-1]
        run_id = f"{schedule['id']}-{int(fire_at)}"
        if store.get_run(run_id) is None:
            options = schedule.get("options") or {}
            try:
                engine.start(
                    schedule["tag"],
                    schedule["input"],
                    env=schedule.get("env"),
                    workflow_id=run_id,
                    timeout=options.get("timeout"),
                    detach=True,
                    schedule_id=schedule["id"],
                    lineage={
                        "scheduled_for": fire_at,
                        "missed": due[:-1],
                        "retries_left": options.get("retries", 0),
                    },
                )
            except InvalidInput as exc:
                if "already exists" not in exc.message:  # another worker won the race: fine
                    lines.append(
                        f"schedule {schedule['id']}: cannot start {schedule['tag']}: {exc.message}"
                    )
                    continue
        if store.advance_schedule(
            schedule["id"], schedule["next_fire_at"], following, run_id, due[:-1], now
        ):
            note = f" (caught up; skipped {len(due) - 1} earlier due times)" if len(due) > 1 else ""
            lines.append(f"⏰ {schedule['id']} fired {schedule['tag']} as {run_id}{note}")
    return lines


def retry_failed(engine: Engine, run_id: str) -> str | None:
    """A run with retries (a schedule's, or `retries` given at start) failed: start its retry,
    a fresh run linked by restarted_from, while retries remain."""
    run = engine.store.get_run(run_id)
    if run is None or run.status not in ("failed", "rolled_back"):
        return None
    left = int((run.lineage or {}).get("retries_left") or 0)
    if left <= 0:
        return None
    retry_id = f"{run.id}-r{left}"
    if engine.store.get_run(retry_id) is not None:
        return None
    engine.start(
        run.tag,
        run.input,
        env=run.env,
        workflow_id=retry_id,
        detach=True,
        schedule_id=run.schedule_id,
        timeout=run.options.get("timeout_ms"),
        lineage={**run.lineage, "retries_left": left - 1},
        links={"restarted_from": run.id},
        metadata=run.metadata or None,
    )
    return retry_id


def set_paused(engine: Engine, schedule_id: str, paused: bool) -> dict[str, Any]:
    schedule = get(engine, schedule_id)
    schedule["paused"] = paused
    cron = schedule.get("cron")
    if not paused and schedule["kind"] == "cron" and cron is not None:
        schedule["next_fire_at"] = next_fire_times(
            cron, schedule.get("timezone"), engine.clock.now()
        )[0]
    engine.store.save_schedule(schedule)
    return describe(engine, schedule)


def list_all(engine: Engine, upcoming: int = 3) -> list[dict[str, Any]]:
    """Every schedule, described with its next `upcoming` fire times."""
    return [
        describe(engine, s, upcoming)
        for s in (engine.store.list_schedules() if engine.has_store() else [])
    ]


def get(engine: Engine, schedule_id: str) -> Schedule:
    schedule = engine.store.get_schedule(schedule_id) if engine.has_store() else None
    if schedule is None:
        raise ScheduleNotFound(f"no schedule with id {schedule_id!r}")
    return schedule


def delete(engine: Engine, schedule_id: str) -> None:
    get(engine, schedule_id)
    if not engine.store.delete_schedule(schedule_id):
        raise InvalidState(f"schedule {schedule_id} was deleted meanwhile")
