"""Who owns a run: owner ids, liveness of owners on this host, and lease renewal.

An owner id is ``host:pid:token``. A run whose owner is a dead process on
this host can be taken over at once; otherwise only when its lease expires.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ductape_cli.engine.execution import Execution

LEASE_TTL = 30.0
RENEW_EVERY = 10.0
CANCEL_POLL_EVERY = 0.5
CHECKPOINT_EVERY = 0.2

# DUCTAPE_HOST names this host in owner ids where the host name does not tell hosts apart
# (containers sharing one name; tests that play several hosts on one machine).
HOST = os.environ.get("DUCTAPE_HOST") or socket.gethostname()


def new_owner_id() -> str:
    return f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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
    """True only when we can prove it: the owner ran on this host and its pid is gone."""
    if not owner or owner == current_owner:
        return False
    host, pid = owner_pid(owner)
    if host != HOST or pid is None:
        return False
    if pid == os.getpid():
        return False
    return not pid_alive(pid)


class LeaseKeeper:
    """One background thread per engine: renews leases, notices cancel requests, checkpoints the WAL.

    It opens its own store connection (SQLite connections stay in their thread).
    """

    def __init__(self, owner: str, open_store: Callable[[], object], clock: object) -> None:
        self.owner = owner
        self._open_store = open_store
        self._clock = clock
        self._active: dict[str, Execution] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def add(self, execution: Execution) -> None:
        with self._lock:
            self._active[execution.run.id] = execution
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="ductape-leases", daemon=True)
                self._thread.start()

    def remove(self, execution: Execution) -> None:
        with self._lock:
            if self._active.get(execution.run.id) is execution:
                del self._active[execution.run.id]

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    def _loop(self) -> None:
        store = None
        last_renew = last_poll = 0.0
        shown: dict[str, str | None] = {}
        while not self._stopped:
            self._wake.wait(CHECKPOINT_EVERY)
            with self._lock:
                active = dict(self._active)
            if not active:
                continue
            try:
                if store is None:
                    store = self._open_store()
                # WAL checkpoints happen here, off the committing thread, so no step commit pays for one.
                store.checkpoint()  # type: ignore[attr-defined]
                now = self._clock.now()  # type: ignore[attr-defined]
                if now - last_poll >= CANCEL_POLL_EVERY:
                    last_poll = now
                    cancels = store.cancel_requests(list(active))  # type: ignore[attr-defined]
                    for run_id, reason in cancels.items():
                        active[run_id].cancel_reason = reason
                    # Publish each run's step in flight (for `status`), only when it changed.
                    moved = {rid: x.current_step for rid, x in active.items() if shown.get(rid) != x.current_step}
                    if moved:
                        store.set_current_steps(moved)  # type: ignore[attr-defined]
                        shown.update(moved)
                if now - last_renew >= RENEW_EVERY:
                    store.renew_leases(self.owner, list(active), now, LEASE_TTL)  # type: ignore[attr-defined]
                    last_renew = now
            except Exception:  # noqa: BLE001 - a busy store must not kill the keeper; retry next tick
                continue
