"""The store as one execution sees it: every write carries the execution's lease token.

`Journal.store` is a `FencedStore`. Reads pass straight through; each
journal or run write is sent with the lease of the claim this execution
holds, so the store refuses it once another owner has taken the run over.
A refusal (`LeaseLost`) marks the execution lost and becomes `LostOwnership`,
a `BaseException` that a handler's ``except Exception:`` cannot swallow; the
executor stops without writing anything more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ductape_cli.errors import LeaseLost, StoreError, WorkflowInterrupt

if TYPE_CHECKING:
    from ductape_cli.engine.journal import Journal

log = logging.getLogger("ductape.leases")

# Writes an execution makes; each takes the lease as a keyword.
_FENCED = frozenset(
    {
        "commit_step",
        "update_op",
        "record_attempt",
        "consume_signal",
        "create_hook",
        "set_run_fields",
    }
)
# Writes whose lease argument the caller passes (positionally), fenced all the same.
_TAKES_LEASE = frozenset({"suspend_run", "finish_run"})


class LostOwnership(WorkflowInterrupt):
    """Another owner holds this run now (or our lease could not be kept): stop without writing."""


class FencedStore:
    def __init__(self, store: Any, journal: Journal) -> None:
        self._store = store
        self._journal = journal

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name in _FENCED:
            return self._fenced(attr, inject=True)
        if name in _TAKES_LEASE:
            return self._fenced(attr, inject=False)
        return attr

    def _fenced(self, method: Callable[..., Any], *, inject: bool) -> Callable[..., Any]:
        journal = self._journal

        flush = method.__name__ != "finish_run"  # the run's end records the deferred row itself

        def call(*args: Any, **kwargs: Any) -> Any:
            if flush:
                journal.flush()  # a deferred step row is written before anything after it
            journal.check_lease()
            if inject:
                kwargs["lease"] = journal.lease
            try:
                return method(*args, **kwargs)
            except LeaseLost as exc:
                journal.lose(exc.message)
                raise LostOwnership(exc.message) from None

        return call


class LeaseClock:
    """How long this process may still act on its lease, on its own monotonic clock.

    The store's expiry is in wall-clock time (the clock another worker judges
    it by); this side counts from when each claim or renewal was *sent*, and
    gives up `SAFETY` seconds early, so a paused process or a stepped clock
    cannot leave two owners acting at once.
    """

    SAFETY = 0.2  # of the lease: give up with a fifth of it still to run

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.valid_until = time.monotonic() + ttl * (1 - self.SAFETY)

    def renewed(self, sent_at: float) -> None:
        self.valid_until = sent_at + self.ttl * (1 - self.SAFETY)

    def expired(self) -> bool:
        return time.monotonic() >= self.valid_until


def renew_now(journal: Journal) -> None:
    """Renew this journal's lease before acting on it again (its keeper fell behind, or we were paused)."""
    assert journal.lease is not None
    sent = time.monotonic()
    try:
        lost = journal.engine.store.renew_leases(
            {journal.run_id: journal.lease}, journal.clock.now(), journal.lease_clock.ttl
        )
    except StoreError as exc:
        log.error("run %s: cannot renew its lease (%s); abandoning it", journal.run_id, exc.message)
        journal.lose(f"lease could not be renewed: {exc.message}")
        raise LostOwnership(exc.message) from None
    if lost:
        journal.lose("another owner took the run over")
        raise LostOwnership("lease lost")
    journal.lease_clock.renewed(sent)
