"""Who owns a run: owner ids, liveness of owners on this host, and lease renewal.

An owner id is ``host:pid:token``, where host is ``hostname/boot-id/pid-namespace``.
A run whose owner is a dead process on this host (and in this pid namespace)
can be taken over at once; otherwise only when its lease expires.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ductape_cli.engine.clock import Clock
    from ductape_cli.engine.journal import Journal

LEASE_TTL = 30.0  # default; `[worker] lease` in ductape.toml changes it
CANCEL_POLL_EVERY = 0.5
CHECKPOINT_EVERY = 0.2


def _host_id() -> tuple[str, bool]:
    """This process's host as owners name it, and whether pids seen under it are ours to judge.

    Containers can share a hostname while each has its own pid namespace (and
    a pid alive in one is meaningless in the other), so a host is the hostname
    plus the boot id and the pid-namespace inode. Where those cannot be read
    on Linux we are unsure, and only lease expiry frees another owner's runs.
    """
    name = socket.gethostname().replace(":", "_").replace("/", "_")
    if not os.path.isdir("/proc/self"):
        return name, True  # no pid namespaces to confuse (macOS, BSD)
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip().replace("-", "")[:12]
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return name, False
    return f"{name}/{boot}/{namespace}", True


# DUCTAPE_HOST names this host in owner ids where the host name does not tell hosts apart
# (containers sharing one name and pid namespace; tests that play several hosts on one machine).
HOST, _HOST_SURE = (
    (os.environ["DUCTAPE_HOST"], True) if os.environ.get("DUCTAPE_HOST") else _host_id()
)

log = logging.getLogger("ductape.leases")


def new_owner_id() -> str:
    return f"{HOST}:{os.getpid()}:{os.urandom(4).hex()}"  # not uuid: its import costs `run` ~2 ms


def owner_pid(owner: str) -> tuple[str, int | None]:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    return host, int(pid_text) if pid_text.isdigit() else None


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed child not yet reaped) still answers kill(0); it is dead to us.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def owner_is_dead(owner: str | None, current_owner: str | None = None) -> bool:
    """True only when we can prove it: the owner ran on this host (same boot, same pid namespace) and its pid is gone."""
    if not owner or owner == current_owner or not _HOST_SURE:
        return False
    host, pid = owner_pid(owner)
    if host != HOST or pid is None:
        return False
    if pid == os.getpid():
        return False
    return not pid_alive(pid)


_KEEPERS: weakref.WeakSet[LeaseKeeper] = weakref.WeakSet()
_KEEPERS_LOCK = threading.Lock()


def cancel_in_process(run_id: str, reason: str) -> None:
    """A cancel of `run_id` was just stored: an execution of it by another engine of this process
    (`serve`'s worker, when its API cancels) stops at its next boundary, not after its keeper's
    next look at the store (every CANCEL_POLL_EVERY). Other processes still learn it from the store."""
    with _KEEPERS_LOCK:
        keepers = list(_KEEPERS)
    for keeper in keepers:
        keeper.cancel(run_id, reason)


class LeaseKeeper:
    """One background thread per engine: renews leases, notices cancel requests, checkpoints the WAL.

    It opens its own store connection (SQLite connections stay in their thread).
    Renewals are fenced by each execution's lease: a run another owner took
    over is marked lost at once. A renewal that fails is logged and retried;
    an execution whose lease could not be renewed in time is abandoned before
    the store would let another worker take the run.
    """

    def __init__(
        self, open_store: Callable[[], object], clock: Clock, ttl: float = LEASE_TTL
    ) -> None:
        self._open_store = open_store
        self._clock = clock
        self.ttl = ttl
        self.renew_every = ttl / 3
        self._active: dict[str, Journal] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False
        with _KEEPERS_LOCK:
            _KEEPERS.add(self)

    def add(self, journal: Journal) -> None:
        with self._lock:
            self._active[journal.run_id] = journal
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="ductape-leases", daemon=True
                )
                self._thread.start()

    def remove(self, journal: Journal) -> None:
        with self._lock:
            if self._active.get(journal.run_id) is journal:
                del self._active[journal.run_id]

    def cancel(self, run_id: str, reason: str) -> None:
        """Mark this engine's execution of `run_id`, if any, cancelled (seen at its next boundary)."""
        with self._lock:
            journal = self._active.get(run_id)
            if journal is not None:
                journal.cancel_reason = reason

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    def _loop(self) -> None:
        store: Any = None
        last_renew = time.monotonic()
        last_poll = 0.0
        shown: dict[str, str | None] = {}
        while not self._stopped:
            self._wake.wait(CHECKPOINT_EVERY)
            with self._lock:
                active = {rid: x for rid, x in self._active.items() if not x.lost}
            if not active:
                continue
            try:
                if store is None:
                    store = self._open_store()
                # WAL checkpoints happen here, off the committing thread, so no step commit pays for one.
                store.checkpoint()
                now = self._clock.now()
                if now - last_poll >= CANCEL_POLL_EVERY:
                    last_poll = now
                    cancels = store.cancel_requests(list(active))
                    for run_id, reason in cancels.items():
                        active[run_id].cancel_reason = reason
                    # Publish each run's step in flight (for `status`), only when it changed.
                    moved = {
                        rid: (x.current_step, x.lease)
                        for rid, x in active.items()
                        if x.lease is not None and shown.get(rid) != x.current_step
                    }
                    if moved:
                        store.set_current_steps(moved)
                        shown.update({rid: step for rid, (step, _) in moved.items()})
                if time.monotonic() - last_renew >= self.renew_every:
                    self._renew(store, active, now)
                    last_renew = time.monotonic()
            except Exception:  # noqa: BLE001 - a busy store must not kill the keeper
                log.exception("lease keeper: store error; retrying")
                for journal in active.values():
                    if journal.lease_clock.expired():
                        log.error(
                            "run %s: lease not renewed in time; abandoning it", journal.run_id
                        )
                        journal.lose("its lease could not be renewed")

    def _renew(self, store: Any, active: dict[str, Journal], now: float) -> None:
        leases = {rid: x.lease for rid, x in active.items() if x.lease is not None}
        sent = time.monotonic()
        lost = store.renew_leases(leases, now, self.ttl)
        for run_id in leases:
            if run_id in lost:
                if not active[run_id].releasing:  # else its own finish or suspend gave the lease up
                    active[run_id].lose("another owner took the run over")
            else:
                active[run_id].lease_clock.renewed(sent)
