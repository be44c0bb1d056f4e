"""Durable waits: sleeps, signals and hooks.

A wait is a journal row in state `waiting` with its deadline (`wake_at`).
When it cannot be satisfied now, the execution suspends: the run is released
with a `ready_at` time and re-executed (replaying) when that time comes or a
signal arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ductape_cli.ctx import signal_names, undeclared_signals
from ductape_cli.durations import parse_duration
from ductape_cli.engine.journal import Frontier, Journal, Suspend
from ductape_cli.errors import SignalTimeout, StepError
from ductape_cli.models import EventType, Lifecycle, OpKind, StepRecord, StepStatus

HOOK_SIGNAL_PREFIX = "hook:"


@dataclass
class Hook:
    """What `ctx.create_hook` returns: give `token` to the outside world, then `await hook.wait()`."""

    token: str
    name: str
    data: Any
    _waits: WaitRunner

    def wait(self, timeout: int | str | None = None) -> Any:
        waits = self._waits
        return waits.deliver(
            waits.wait_for_signal(
                [HOOK_SIGNAL_PREFIX + self.token], timeout, ("<hook>", 0), hook=self.name
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token, "name": self.name, "data": self.data}


class WaitRunner:
    """Runs `ctx.sleep`, `ctx.wait_for_signal` and hooks: wait inline when due soon, else suspend."""

    def __init__(
        self,
        journal: Journal,
        signals: Iterable[str],
        inline_wait: float,
        deliver: Callable[[Any], Any],
    ) -> None:
        self.journal = journal
        self.clock = journal.clock
        self.store = journal.store
        self.run_id = journal.run.id
        self.signals = signals  # the workflow's declared signals (none declared: any goes)
        self.inline_wait = inline_wait
        # How a hook's `wait()` hands its awaitable to the handler (see `Execution.deliver`).
        self.deliver = deliver

    async def sleep(
        self, duration: int | float | str, name: str | None, site: tuple[str, int]
    ) -> None:
        try:
            ms = parse_duration(duration, what="sleep duration")
        except Exception as exc:
            raise StepError(f"ctx.sleep({duration!r}) at {site[0]}:{site[1]}: {exc}") from None
        assert ms is not None
        tag = name or "sleep"
        seq, record = self.journal.next_op(OpKind.SLEEP, tag, site)
        if record is None:
            now = self.clock.now()
            record = StepRecord(
                self.run_id,
                seq,
                OpKind.SLEEP,
                tag,
                StepStatus.WAITING,
                started_at=now,
                wake_at=now + ms / 1000,
                options={"duration_ms": ms},
                source=f"{site[0]}:{site[1]}",
            )
            self.journal.commit(
                record,
                self.journal.take_events(
                    (
                        now,
                        EventType.SLEEP_STARTED,
                        None,
                        {"duration_ms": ms, "wake_at": record.wake_at},
                    )
                ),
            )
            self.journal.notify(EventType.SLEEP_STARTED, wake_at=record.wake_at, duration_ms=ms)
        if record.status == StepStatus.COMPLETED:
            return
        wake_at = record.wake_at or 0.0
        while True:
            self.journal.check_waiting()
            remaining = wake_at - self.clock.now()
            if remaining <= 0:
                break
            if remaining > self.inline_wait or self.journal.shutting_down:
                raise Suspend(wake_at, {"kind": "sleep", "wake_at": wake_at, "seq": seq})
            await self.clock.sleep(min(remaining, 0.25))
        now = self.clock.now()
        self.store.update_op(
            self.run_id,
            seq,
            {"status": "completed", "ended_at": now},
            self.journal.take_events(
                (
                    now,
                    EventType.SLEEP_COMPLETED,
                    None,
                    {"duration_ms": ms if record.options else None},
                )
            ),
        )
        record.status = StepStatus.COMPLETED
        self.journal.notify(
            Lifecycle.WAIT_ENDED, wait="sleep", tag=tag, started_at=record.started_at
        )

    async def wait_for_signal(
        self,
        names: str | list[str],
        timeout: int | str | None,
        site: tuple[str, int],
        hook: str | None = None,
    ) -> Any:
        wanted = signal_names(names)
        if wanted is None:
            raise StepError(
                f"wait_for_signal at {site[0]}:{site[1]} needs one or more signal names, got {names!r}"
            )
        if hook is None and (unknown := undeclared_signals(wanted, self.signals)):
            raise StepError(
                f"wait_for_signal({unknown[0]!r}) at {site[0]}:{site[1]}: the workflow declares no such signal"
            )
        try:
            timeout_ms = parse_duration(timeout, what="signal timeout")
        except Exception as exc:
            raise StepError(f"wait_for_signal at {site[0]}:{site[1]}: {exc}") from None
        tag = ",".join(wanted)
        seq, record = self.journal.next_op(OpKind.SIGNAL, tag, site)
        if record is None:
            now = self.clock.now()
            deadline = None if timeout_ms is None else now + timeout_ms / 1000
            record = StepRecord(
                self.run_id,
                seq,
                OpKind.SIGNAL,
                tag,
                StepStatus.WAITING,
                started_at=now,
                wake_at=deadline,
                options={
                    "signals": wanted,
                    "timeout_ms": timeout_ms,
                    **({"hook": hook} if hook else {}),
                },
                source=f"{site[0]}:{site[1]}",
            )
            self.journal.commit(
                record,
                self.journal.take_events(
                    (now, EventType.SIGNAL_WAITING, None, {"signals": wanted, "deadline": deadline})
                ),
            )
        if record.status == StepStatus.COMPLETED:
            return _delivered(record.output, len(wanted) > 1 or hook is not None)
        if record.status == StepStatus.FAILED:
            raise SignalTimeout(wanted, (record.options or {}).get("timeout_ms") or 0)
        if self.journal.frontier_mode:
            raise Frontier()
        now = self.clock.now()
        event_type = EventType.HOOK_RECEIVED if hook else EventType.SIGNAL_RECEIVED
        # The deadline is a fact in the journal: a signal that arrived after it loses to the
        # timeout, however late the run is processed and by whom.
        signal = self.store.consume_signal(
            self.run_id, seq, wanted, now, event_type, hook, deadline=record.wake_at
        )
        if signal is not None:
            output = {"signal": signal.name, "payload": signal.payload}
            record.status, record.output = StepStatus.COMPLETED, output
            self.journal.notify(EventType.SIGNAL_RECEIVED, name=signal.name)
            self.journal.notify(
                Lifecycle.WAIT_ENDED,
                wait="hook" if hook else "signal",
                tag=tag,
                started_at=record.started_at,
            )
            return _delivered(output, len(wanted) > 1 or hook is not None)
        if record.wake_at is not None and now >= record.wake_at:
            self.store.expire_wait(
                self.run_id,
                seq,
                wanted,
                record.wake_at,
                now,
                self.journal.take_events(
                    (now, EventType.SIGNAL_TIMED_OUT, None, {"signals": wanted})
                ),
            )
            record.status = StepStatus.FAILED
            self.journal.notify(
                Lifecycle.WAIT_ENDED,
                wait="hook" if hook else "signal",
                tag=tag,
                started_at=record.started_at,
                timed_out=True,
            )
            raise SignalTimeout(wanted, (record.options or {}).get("timeout_ms") or 0)
        self.journal.check_waiting()
        waiting: dict[str, Any] = {
            "kind": "hook" if hook else "signal",
            "signals": wanted,
            "deadline": record.wake_at,
            "seq": seq,
        }
        if hook:
            waiting["hook"] = hook
        raise Suspend(record.wake_at, waiting)

    async def create_hook(self, name: str, data: Any, site: tuple[str, int]) -> Hook:
        seq, record = self.journal.next_op(OpKind.HOOK, name, site)
        if record is None:
            now = self.clock.now()
            import secrets  # here: its import (hmac, OpenSSL) is start-up a run without hooks skips

            token = "hk_" + secrets.token_urlsafe(
                24
            )  # never starts with "-", which a shell command would take for an option
            record = StepRecord(
                self.run_id,
                seq,
                OpKind.HOOK,
                name,
                StepStatus.COMPLETED,
                input=data,
                output={"token": token},
                started_at=now,
                ended_at=now,
                source=f"{site[0]}:{site[1]}",
            )
            self.store.create_hook(token, self.run_id, seq, name, data, now)
            self.journal.commit(
                record,
                self.journal.take_events(
                    (now, EventType.HOOK_CREATED, None, {"name": name, "data": data})
                ),
            )
        return Hook(token=record.output["token"], name=name, data=record.input, _waits=self)


def _delivered(output: dict[str, Any] | None, tagged: bool) -> Any:
    """A signal's payload as the handler sees it; with several names, `_signal` says which came."""
    output = output or {}
    payload = output.get("payload")
    name = output.get("signal")
    if isinstance(payload, dict):
        return {**payload, "_signal": name} if tagged else payload
    return {"_signal": name, "value": payload} if tagged else payload
