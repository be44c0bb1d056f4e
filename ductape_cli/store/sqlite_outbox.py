"""The transactional outbox: messages written with the step that produced them, sent later by a relay.

`_outbox_txn` runs inside the transaction that records a step's completion
(`SqliteStore.commit_step(..., outbox=...)`), so a completed step always has
its messages stored and a failed or lost one never does. A PostgreSQL store
implements the same four methods over the same table.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ductape_cli.store.encoding import dumps


@dataclass(frozen=True)
class OutboxMessage:
    message_id: str
    broker: str
    topic: str
    message: Any
    run_id: str | None = None
    step: str | None = None
    created_at: float = 0.0
    attempts: int = 0


_INSERT = (
    "INSERT OR IGNORE INTO outbox (message_id, broker, topic, message, run_id, step, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class OutboxMixin:
    """Outbox SQL, mixed into `SqliteStore` (needs its `_read` and `_write`)."""

    _read: Any
    _write: Any

    @staticmethod
    def _outbox_txn(conn: sqlite3.Connection, messages: Sequence[OutboxMessage]) -> None:
        # OR IGNORE: the id is derived from run and step, so a second write is the same message.
        conn.executemany(
            _INSERT,
            [
                (m.message_id, m.broker, m.topic, dumps(m.message), m.run_id, m.step, m.created_at)
                for m in messages
            ],
        )

    def claim_outbox(
        self,
        owner: str,
        now: float,
        lease: float,
        limit: int = 100,
        dead_owners: Sequence[str] = (),
    ) -> list[OutboxMessage]:
        """Unsent messages nobody else is sending (or whose sender died), oldest first, leased to `owner`."""
        dead = f" OR claimed_by IN ({', '.join('?' * len(dead_owners))})" if dead_owners else ""
        with self._write() as conn:
            rows = conn.execute(
                "SELECT message_id, broker, topic, message, run_id, step, created_at, attempts FROM outbox "
                f"WHERE sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < ?{dead}) ORDER BY created_at LIMIT ?",
                (now, *dead_owners, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE message_id = ?",
                [(owner, now + lease, r[0]) for r in rows],
            )
        return [
            OutboxMessage(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7]) for r in rows
        ]

    def outbox_senders_on_host(self, host: str) -> list[str]:
        """Owners (host:pid:token) holding unsent messages from `host`, to check for dead pids."""
        rows = self._read(
            "SELECT DISTINCT claimed_by FROM outbox WHERE sent_at IS NULL AND claimed_by LIKE ?",
            (host + ":%",),
        )
        return [r[0] for r in rows]

    def outbox_sent(self, message_ids: Sequence[str], now: float) -> None:
        with self._write() as conn:
            conn.executemany(
                "UPDATE outbox SET sent_at = ?, claimed_by = NULL, claimed_until = NULL, attempts = attempts + 1 "
                "WHERE message_id = ?",
                [(now, m) for m in message_ids],
            )

    def outbox_failed(self, message_id: str, error: str, retry_at: float) -> None:
        """Record a failed send; the message is claimable again from `retry_at`."""
        with self._write() as conn:
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, claimed_by = NULL, claimed_until = ? "
                "WHERE message_id = ?",
                (error, retry_at, message_id),
            )

    def outbox_status(self) -> list[dict[str, Any]]:
        """Per broker and topic: messages waiting to be sent, sent, and the last error."""
        rows = self._read(
            "SELECT broker, topic, SUM(sent_at IS NULL), SUM(sent_at IS NOT NULL), "
            "MAX(CASE WHEN sent_at IS NULL THEN last_error END) FROM outbox GROUP BY broker, topic ORDER BY broker, topic"
        )
        return [
            {"broker": r[0], "topic": r[1], "pending": r[2], "sent": r[3], "last_error": r[4]}
            for r in rows
        ]
