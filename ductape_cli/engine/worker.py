"""The worker: adopts due runs (queued, woken, signalled, cancelled, orphaned) and due schedules.

One thread claims and `concurrency` threads execute: each claim takes as many
runs as executors are free, in one short write transaction, so several workers
on one store never execute the same run at once and a worker never holds a run
it has no thread for. While claims come back full (a queue is draining), an
executor that ends a run claims its next one itself, in the same transaction
that records the run's end. Stopping is graceful: executions
release their runs at the next step boundary, and another worker can adopt
them at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ductape_cli.engine.clock import SteadyTime, SystemClock
from ductape_cli.engine.leases import HOST, owner_is_dead
from ductape_cli.errors import DefinitionError, DuctapeError, StoreError, WorkflowNotFound

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine
    from ductape_cli.engine.standby import Standby

Report = Callable[[str], None]
CLAIM_BACKOFF_CAP = 30.0  # seconds between claims while the store keeps failing
IDLE_BACKSTOP = 5.0  # with notifications, an idle claimer still looks this often (a lost NOTIFY costs this much)
TICK_EVERY_LISTENING = 1.0  # schedules are checked this often when claims need no polling
STANDBY_POLL = 0.5  # a standing-by worker looks for a free slot this often (seconds)

log = logging.getLogger("ductape.worker")


class Worker:
    def __init__(
        self,
        engine: Engine,
        *,
        concurrency: int = 1,
        tags: Sequence[str] | None = None,
        poll_interval: float = 0.25,
        inline_wait: float = 1.0,
        report: Report | None = None,
        ticks: Sequence[Callable[[], Any]] = (),
        standby: Standby | None = None,
    ) -> None:
        self.engine = engine
        self.standby = standby  # None: this worker always takes runs (`engine/standby.py`)
        self.ticks = list(ticks)  # periodic chores beside schedules (the daily retention prune)
        self.concurrency = max(1, concurrency)
        self.tags = list(tags) if tags else None
        self.poll_interval = poll_interval
        self.inline_wait = inline_wait
        self.report = report or (lambda line: None)
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self._listening = False
        self.processed = 0
        self.failed = 0  # runs whose execution raised; each is logged with its traceback
        self.fatal: str | None = None  # a store error that ended `run(once=True)`
        self._steady = (
            SteadyTime(wall=engine.clock.now) if isinstance(engine.clock, SystemClock) else None
        )
        self._warned_ahead = False
        self._watched: dict[
            tuple[str, str, float], float
        ] = {}  # expired lease -> when we first saw it
        self._lock = threading.Lock()
        # The claimer hands runs to the executors; a slot is an executor with nothing to do.
        self._handoff: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._slots = threading.Semaphore(self.concurrency)
        self._finished = threading.Event()
        self._in_flight = 0
        self._dead: list[str] = []
        self._dead_checked_at: float | None = None
        self._backlog = False  # the last claim came back full: more runs are probably due
        self._stale: list[str] = []
        self._stale_checked_at: float | None = None

    def stop(self) -> None:
        """Ask every thread to finish its current step, release its run and exit."""
        self.engine.shutting_down = True
        self.stop_event.set()
        self._wake.set()

    def wake(self) -> None:
        """Poll now: something was just queued (`serve` calls this after starting a run)."""
        self._wake.set()

    def run(self, *, once: bool = False, ready: Callable[[], None] | None = None) -> int:
        """Work until stopped (or, with `once`, until nothing is due). Returns runs executed.
        `ready` is called after the start-up work, just before the claim and execute threads start.

        Message triggers and the outbox relay run beside the claim loops (`engine/triggers.py`);
        with `once`, only the outbox is flushed, after the runs. A store that notifies
        (PostgreSQL) wakes the idle claimer itself, so it waits long instead of polling.
        """
        from ductape_cli.engine.triggers import Background

        background = Background(self.engine, self.report, self.tags)
        self._stale_checked_at = None  # each run looks at the leases afresh
        if not once:
            background.start()
        stop_listening = None if once else self._listen()
        self._listening = stop_listening is not None
        try:
            processed = self._run_threads(once, ready)
        finally:
            if stop_listening is not None:
                stop_listening()
            background.stop()
            if self.standby is not None:
                self.standby.close()
        if once:
            background.flush_outbox()
        return processed

    def _listen(self) -> Callable[[], None] | None:
        """Start the store's wake-ups; None (poll) where it has none or cannot be opened yet
        (the claim loop then reports the store's problem and backs off)."""
        try:
            return self.engine.store.listen(self.wake)
        except Exception:  # noqa: BLE001 - reported by the claims that follow
            return None

    def _idle_wait(self) -> float:
        """How long the claimer waits when nothing was due: the poll interval, or with
        notifications until the next due time or lease expiry (at most IDLE_BACKSTOP)."""
        if not self._listening:
            return self.poll_interval
        try:
            due = self.engine.store.next_claim_at()
        except Exception:  # noqa: BLE001 - the claim that follows reports a store problem
            return self.poll_interval
        if due is None:
            return IDLE_BACKSTOP
        ahead = due - self.now()
        # Due already but not ours (another worker's, or an expired lease still being watched): poll.
        return self.poll_interval if ahead <= 0 else min(IDLE_BACKSTOP, ahead)

    def _run_threads(self, once: bool, ready: Callable[[], None] | None = None) -> int:
        """One thread claims (as many runs as executors are free, in one claim), `concurrency` threads
        execute; this thread fires schedules and chores."""
        executors = [
            threading.Thread(target=self._execute_loop, name=f"ductape-worker-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        claimer = threading.Thread(
            target=self._claim_loop, args=(once,), name="ductape-worker-claim", daemon=True
        )
        if ready is not None:
            ready()
        for thread in (*executors, claimer):
            thread.start()
        try:
            self.tick_chores()
            while claimer.is_alive():
                if not once:
                    self.tick_schedules()
                    self.tick_chores()
                claimer.join(
                    timeout=max(self.poll_interval, TICK_EVERY_LISTENING)
                    if self._listening or self._standing_by()
                    else self.poll_interval
                )
            for _ in executors:
                self._handoff.put(None)
            for thread in executors:
                while thread.is_alive():
                    thread.join(timeout=self.poll_interval)
        except KeyboardInterrupt:
            self.stop()
            claimer.join()
            for _ in executors:
                self._handoff.put(None)
            for thread in executors:
                thread.join()
        return self.processed

    def tick_schedules(self) -> int:
        """Fire due schedules (each due time exactly once across workers)."""
        from ductape_cli.engine.schedules import fire_due

        try:
            fired = fire_due(self.engine, self.now())
        except Exception as exc:  # noqa: BLE001 - report and keep working
            # Our own errors are one reported line; anything else is a bug worth its traceback.
            log.log(
                logging.DEBUG if isinstance(exc, DuctapeError) else logging.ERROR,
                "firing due schedules failed; retrying at the next poll",
                exc_info=True,
            )
            self.report(f"schedule error: {exc}")
            return 0
        for line in fired:
            self.report(line)
        return len(fired)

    def tick_chores(self) -> None:
        """Give each periodic chore its turn; it decides itself whether it is due."""
        for chore in self.ticks:
            try:
                chore()
            except Exception as exc:  # noqa: BLE001 - report and keep working
                log.log(
                    logging.DEBUG if isinstance(exc, DuctapeError) else logging.ERROR,
                    "periodic chore %s failed; retrying when it is next due",
                    getattr(chore, "__name__", chore),
                    exc_info=True,
                )
                self.report(f"chore error: {exc}")

    def now(self) -> float:
        """The time due runs and schedules are judged by: steady against forward clock steps."""
        if self._steady is None:
            return float(self.engine.clock.now())
        now = self._steady.now()
        if self._steady.ahead > self._steady.JUMP and not self._warned_ahead:
            log.warning(
                "the system clock jumped %.0fs ahead; judging due times by the steady clock",
                self._steady.ahead,
            )
            self._warned_ahead = True
        return now

    def _stale_leases(self, now: float) -> list[str]:
        """Expired leases this worker has watched go unrenewed for a whole renewal interval,
        looked up at most once per poll interval (a queue drains with one claim per run).

        A lease that looks expired may only mean our clock runs ahead of the
        owner's; an owner that is alive renews every third of its lease, so a
        lease unchanged for that long (on our monotonic clock) is really stale.
        """
        with self._lock:
            seen = time.monotonic()
            if (
                self._stale_checked_at is not None
                and seen - self._stale_checked_at < self.poll_interval
            ):
                return self._stale
            self._stale_checked_at = seen
            current = {
                (run_id, lease, expiry)
                for run_id, lease, expiry in self.engine.store.expired_leases(now)
            }
            self._watched = {key: self._watched.get(key, seen) for key in current}
            grace = self.engine.lease_ttl / 3
            self._stale = [key[1] for key, since in self._watched.items() if seen - since >= grace]
            return self._stale

    def _dead_owners(self) -> list[str]:
        """Owners on this host whose process is gone, looked up at most once per poll interval."""
        with self._lock:  # the claimer and the executors claiming for themselves
            now = time.monotonic()
            if self._dead_checked_at is None or now - self._dead_checked_at >= self.poll_interval:
                store = self.engine.store
                self._dead = [
                    o for o in store.owners_on_host(HOST) if owner_is_dead(o, self.engine.owner)
                ]
                self._dead_checked_at = now
            return self._dead

    def _reserve(self) -> int:
        """Wait for at least one free executor, then take every free one; 0 when stopping."""
        while not self._slots.acquire(timeout=self.poll_interval):
            if self.stop_event.is_set():
                return 0
        if self.stop_event.is_set():  # asked to stop while the executors were busy: claim no more
            self._slots.release()
            return 0
        taken = 1
        while self._slots.acquire(blocking=False):
            taken += 1
        return taken

    def _claim_loop(self, once: bool) -> None:
        failures = 0
        while not self.stop_event.is_set():
            if once:
                self.tick_schedules()
            free = self._reserve()
            if not free:
                return
            if not once and not self._may_take():
                self._give_back(free)
                self._wake.wait(max(self.poll_interval, STANDBY_POLL))
                self._wake.clear()
                continue
            self._finished.clear()
            try:
                claimed = self._claim(free)
            except Exception as exc:  # noqa: BLE001 - a store hiccup must not end the worker
                self._give_back(free)
                failures += 1
                transient = isinstance(exc, StoreError) and exc.transient
                if once and not transient:
                    # Corrupt, read-only, full: waiting will not fix it. `--once` ends (exit 2).
                    self.fatal = exc.message if isinstance(exc, StoreError) else str(exc)
                    self.stop_event.set()
                    return
                delay = min(self.poll_interval * 2**failures, CLAIM_BACKOFF_CAP)
                log.warning(
                    "claim failed (%s); retrying in %.1fs",
                    exc,
                    delay,
                    exc_info=not isinstance(exc, StoreError),
                )
                self.stop_event.wait(delay)
                continue
            failures = 0
            # Came back full: there may be more, and executors claim their next runs themselves.
            self._backlog = len(claimed) == free
            self._give_back(free - len(claimed))
            with self._lock:
                self._in_flight += len(
                    claimed
                )  # counted from the handoff: `--once` must not stop before they run
            for run in claimed:
                self._handoff.put(run)
            if claimed:
                continue
            if self._busy() == 0:
                if once:
                    return
                if self.standby is not None:
                    self.standby.give_back()
                self._wake.wait(self._idle_wait())
                self._wake.clear()
            else:
                # Runs in flight may make more due (a child, a signal to a sibling): claim when one ends.
                self._finished.wait(self.poll_interval)

    def _claim(self, limit: int) -> list[Any]:
        """Up to `limit` due runs for this worker: queued ones, and those of dead owners and
        stale leases it may take over."""
        engine = self.engine
        now = self.now()
        return engine.store.claim_ready(
            engine.owner,
            now,
            engine.lease_ttl,
            limit,
            self.tags,
            self._dead_owners(),
            self._stale_leases(now),
        )

    def _standing_by(self) -> bool:
        return self.standby is not None and self.standby.standing_by

    def _may_take(self) -> bool:
        """Whether to claim now: always, or while `standby` says so — and, standing by, while
        some lease has gone stale (its holder is stopped, not dead, and keeps its slot)."""
        if self.standby is None or self.standby.may_take():
            return True
        try:
            return bool(self._stale_leases(self.now()))
        except Exception:  # noqa: BLE001 - the claim that follows reports the store's problem
            log.debug("reading stale leases while standing by failed", exc_info=True)
            return True

    def _give_back(self, slots: int) -> None:
        for _ in range(slots):
            self._slots.release()

    def _busy(self) -> int:
        with self._lock:
            return self._in_flight

    def _execute_loop(self) -> None:
        run = self._handoff.get()
        while run is not None:
            ended = False
            try:
                self._ride_on_finish(run)
                self._execute(run)
                ended = True
            finally:
                following = self._claim_next(ended)
                with self._lock:
                    self._in_flight += (following is not None) - 1
                if following is None:
                    self._slots.release()
                    self._finished.set()
            run = following if following is not None else self._handoff.get()

    def _ride_on_finish(self, run: Any) -> None:
        """While a queue drains and no run needs taking over (those go first, through
        `claim_ready`), let `run`'s finish claim this executor's next run in its own
        transaction: one commit less per run."""
        if not self._backlog or self.stop_event.is_set() or not self._may_take():
            return
        engine = self.engine
        try:
            if self._dead_owners() or self._stale_leases(self.now()):
                return
            engine.store.claim_on_finish(
                run.id, engine.owner, self.now, engine.lease_ttl, self.tags
            )
        except Exception:  # noqa: BLE001 - the claims that follow report a store problem
            log.debug("asking the finish to claim the next run failed", exc_info=True)

    def _claim_next(self, ended: bool) -> Any:
        """The next due run for this executor, claimed on its own thread while claims keep coming
        back full (a queue is draining): the one its last run's finish claimed, or one claimed now.
        No handoff through the claimer, which cost two thread switches and the claimer's wake-up
        per run. None: the claimer takes over again."""
        try:
            ridden = self.engine.store.take_finish_claim()
        except Exception:  # noqa: BLE001 - then nothing rode; the claims that follow report it
            log.debug("collecting the run claimed with a finish failed", exc_info=True)
            ridden = None
        if ridden and (not ended or self.stop_event.is_set()):
            for run in ridden:  # not ours to execute after all: free it for any worker at once
                self._release(run)
            return None
        if ridden:
            return ridden[0]
        if ridden is not None:  # the finish found nothing due
            self._backlog = False
        if not ended or not self._backlog or self.stop_event.is_set() or not self._may_take():
            return None
        try:
            claimed = self._claim(1)
        except Exception:  # noqa: BLE001 - the claimer's next claim reports it and backs off
            log.debug("claiming the next run on an executor failed", exc_info=True)
            claimed = []
        if not claimed:
            self._backlog = False
            return None
        return claimed[0]

    def _release(self, run: Any) -> None:
        try:
            self.engine.store.release_run(run.id, run.lease)
        except Exception:  # noqa: BLE001 - its lease expires and another worker takes it over
            log.warning("could not release run %s; it is taken over when its lease expires", run.id)

    def _execute(self, run: Any) -> None:
        self.report(f"▶ {run.id} {run.tag}")
        try:
            outcome, _ = self.engine.execute(run, inline_wait=self.inline_wait)
        except (WorkflowNotFound, DefinitionError) as exc:
            self._unloadable(run, exc.message)
            return
        except Exception as exc:  # noqa: BLE001 - one broken run must not stop the worker
            log.exception("run %s (%s): execution failed; releasing it", run.id, run.tag)
            with self._lock:
                self.failed += 1
            self.report(f"✗ {run.id} {run.tag}: {exc}")
            if run.lease:
                self.engine.store.release_run(run.id, run.lease)
            return
        with self._lock:
            self.processed += 1
        if outcome.lost:
            self.report(f"· {run.id} taken over by another owner")
        elif outcome.suspended:
            detail = (outcome.waiting or {}).get("kind", "waiting")
            self.report(f"◷ {run.id} {run.tag} {detail}")
        else:
            self.report(f"■ {run.id} {run.tag} {outcome.status}")
            if (run.lineage or {}).get("retries_left") and outcome.status in (
                "failed",
                "rolled_back",
            ):
                from ductape_cli.engine.schedules import retry_failed

                retry = retry_failed(self.engine, run.id)
                if retry:
                    self.report(f"↻ {run.id} failed; scheduled retry {retry}")

    def _unloadable(self, run: Any, message: str) -> None:
        """A poison run: back off (it must not starve the others), then fail it."""
        try:
            retry_at = self.engine.defer_unloadable(run, message)
        except DuctapeError as exc:
            log.warning("run %s: could not record its load error: %s", run.id, exc.message)
            return
        with self._lock:
            self.failed += 1
        if retry_at is None:
            self.report(f"■ {run.id} {run.tag} failed: workflow not loadable ({message})")
        else:
            delay = retry_at - self.engine.clock.now()
            self.report(
                f"✗ {run.id} {run.tag}: cannot load workflow ({message}); retrying in {delay:.0f}s"
            )
