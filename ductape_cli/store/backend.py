"""What a backend says about itself (name, schema version, wake-ups), for SQLite; `PostgresStore` overrides."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

COUNTABLE = frozenset(
    {
        "runs",
        "steps",
        "attempts",
        "events",
        "signals",
        "hooks",
        "schedules",
        "definitions",
        "topic_messages",
        "quota_buckets",
        "feed",
    }
)


class BackendMixin:
    """Mixed into `SqliteStore`: the protocol's backend-level methods, SQLite's answers."""

    backend = "sqlite"
    _read: Any

    def schema_version(self) -> tuple[int, int]:
        """(shared migrations applied, backend-only migrations applied)."""
        return int(self._read("PRAGMA user_version")[0][0]), 0

    def count_rows(self, table: str) -> int:
        """Rows in one of the store's tables (for `ductape store info`)."""
        if table not in COUNTABLE:
            raise ValueError(f"not a store table: {table}")
        return int(self._read(f"SELECT COUNT(*) FROM {table}")[0][0])

    def listen(self, wake: Callable[[], None]) -> Callable[[], None] | None:
        """SQLite has no notifications: None, and the worker polls (a local file read is cheap)."""
        return None

    def next_claim_at(self) -> float | None:
        """When the next run becomes claimable: its due time, or its holder's lease expiry."""
        rows = self._read(
            "SELECT MIN(CASE WHEN owner IS NULL THEN ready_at ELSE MAX(ready_at, lease_expires_at) END) "
            "FROM runs WHERE status IN ('pending', 'running') AND ready_at IS NOT NULL"
        )
        return rows[0][0] if rows else None
