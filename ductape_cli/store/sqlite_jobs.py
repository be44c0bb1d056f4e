"""SQL for schedules, topic logs and quota buckets: the store's side tables, mixed into `SqliteStore`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ductape_cli.models import Schedule
from ductape_cli.store.encoding import dumps
from ductape_cli.store.encoding import loads as _loads


class SchedulesAndTopicsMixin:
    """Methods that only need `_read` and `_write` from the store they are mixed into."""

    _read: Any
    _write: Any
    namespace: str | None
    _scope: str
    _scoped: tuple[str, ...]

    # -- schedules --------------------------------------------------------

    _SCHEDULE_COLUMNS = (
        "id, tag, input, env, kind, cron, timezone, run_at, next_fire_at, options, paused, created_at, "
        "last_fired_at, last_run_id, fire_count, missed"
    )

    def save_schedule(self, schedule: Schedule) -> None:
        with self._write() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO schedules ({self._SCHEDULE_COLUMNS}, namespace) VALUES ({', '.join('?' * 17)})",
                (*self._schedule_values(schedule), self.namespace or ""),
            )

    def get_schedule(self, schedule_id: str) -> Schedule | None:
        rows = self._read(
            f"SELECT {self._SCHEDULE_COLUMNS} FROM schedules WHERE id = ?{self._scope}",
            (schedule_id, *self._scoped),
        )
        return self._schedule(rows[0]) if rows else None

    def list_schedules(self) -> list[Schedule]:
        rows = self._read(
            f"SELECT {self._SCHEDULE_COLUMNS} FROM schedules WHERE 1{self._scope} ORDER BY created_at",
            self._scoped,
        )
        return [self._schedule(r) for r in rows]

    def delete_schedule(self, schedule_id: str) -> bool:
        with self._write() as conn:
            return (
                conn.execute(
                    f"DELETE FROM schedules WHERE id = ?{self._scope}", (schedule_id, *self._scoped)
                ).rowcount
                == 1
            )

    def due_schedules(self, now: float) -> list[Schedule]:
        rows = self._read(
            f"SELECT {self._SCHEDULE_COLUMNS} FROM schedules WHERE paused = 0 AND next_fire_at <= ?{self._scope} ORDER BY next_fire_at",
            (now, *self._scoped),
        )
        return [self._schedule(r) for r in rows]

    def advance_schedule(
        self,
        schedule_id: str,
        expected_next: float | None,
        next_fire_at: float | None,
        run_id: str,
        missed: Sequence[float],
        now: float,
    ) -> bool:
        """Move a schedule past a due time it fired, if nobody else did (compare-and-set)."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE schedules SET next_fire_at = ?, last_fired_at = ?, last_run_id = ?, fire_count = fire_count + 1, "
                "missed = ? WHERE id = ? AND next_fire_at = ?",
                (next_fire_at, now, run_id, dumps(list(missed)), schedule_id, expected_next),
            )
            return cur.rowcount == 1

    @staticmethod
    def _schedule_values(s: Schedule) -> tuple[Any, ...]:
        return (
            s["id"],
            s["tag"],
            dumps(s.get("input")),
            s.get("env"),
            s["kind"],
            s.get("cron"),
            s.get("timezone"),
            s.get("run_at"),
            s.get("next_fire_at"),
            dumps(s.get("options") or {}),
            int(bool(s.get("paused"))),
            s["created_at"],
            s.get("last_fired_at"),
            s.get("last_run_id"),
            s.get("fire_count", 0),
            dumps(s.get("missed") or []),
        )

    @staticmethod
    def _schedule(r: tuple[Any, ...]) -> Schedule:
        return {
            "id": r[0],
            "tag": r[1],
            "input": _loads(r[2]),
            "env": r[3],
            "kind": r[4],
            "cron": r[5],
            "timezone": r[6],
            "run_at": r[7],
            "next_fire_at": r[8],
            "options": _loads(r[9]) or {},
            "paused": bool(r[10]),
            "created_at": r[11],
            "last_fired_at": r[12],
            "last_run_id": r[13],
            "fire_count": r[14],
            "missed": _loads(r[15]) or [],
        }

    # -- topics and quotas (components) ---------------------------------

    def append_message(
        self,
        broker: str,
        topic: str,
        message: Any,
        run_id: str | None,
        now: float,
        *,
        message_id: str | None = None,
    ) -> int:
        """Append to a topic log; returns the message's offset (0-based, gap-free per topic).

        A message id already in the topic returns that message's offset and appends nothing.
        """
        namespace = self.namespace or ""
        with self._write() as conn:
            if message_id is not None:
                row = conn.execute(
                    "SELECT offset FROM topic_messages WHERE namespace = ? AND broker = ? AND topic = ? AND message_id = ?",
                    (namespace, broker, topic, message_id),
                ).fetchone()
                if row is not None:
                    return int(row[0])
            offset = conn.execute(
                "SELECT COALESCE(MAX(offset) + 1, 0) FROM topic_messages WHERE namespace = ? AND broker = ? AND topic = ?",
                (namespace, broker, topic),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO topic_messages (namespace, broker, topic, offset, message, run_id, created_at, message_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (namespace, broker, topic, offset, dumps(message), run_id, now, message_id),
            )
            return int(offset)

    def read_messages(
        self, broker: str, topic: str, from_offset: int = 0, limit: int = 1000
    ) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT offset, message, run_id, created_at, message_id FROM topic_messages "
            f"WHERE broker = ? AND topic = ? AND offset >= ?{self._scope} ORDER BY offset LIMIT ?",
            (broker, topic, from_offset, *self._scoped, limit),
        )
        return [
            {
                "offset": r[0],
                "message": json.loads(r[1]),
                "run_id": r[2],
                "created_at": r[3],
                "message_id": r[4],
            }
            for r in rows
        ]

    def consumer_offset(self, consumer: str, broker: str, topic: str) -> int:
        """The next offset a local-topic consumer (a message trigger) has not acknowledged."""
        rows = self._read(
            "SELECT next_offset FROM consumer_offsets WHERE consumer = ? AND broker = ? AND topic = ?",
            (self._consumer_key(consumer), broker, topic),
        )
        return int(rows[0][0]) if rows else 0

    def set_consumer_offset(self, consumer: str, broker: str, topic: str, next_offset: int) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO consumer_offsets (consumer, broker, topic, next_offset) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (consumer, broker, topic) DO UPDATE SET next_offset = MAX(next_offset, excluded.next_offset)",
                (self._consumer_key(consumer), broker, topic, next_offset),
            )

    def _consumer_key(self, consumer: str) -> str:
        """A consumer's offsets belong to its project: two projects' triggers of one tag never share them."""
        return consumer if not self.namespace else f"{self.namespace}/{consumer}"

    def list_topics(self) -> list[dict[str, Any]]:
        rows = self._read(
            f"SELECT broker, topic, COUNT(*), MAX(created_at) FROM topic_messages WHERE 1{self._scope} "
            "GROUP BY broker, topic ORDER BY broker, topic",
            self._scoped,
        )
        return [{"broker": r[0], "topic": r[1], "messages": r[2], "last_at": r[3]} for r in rows]

    def take_quota(
        self, quota: str, key: str, limit: int, per_seconds: float, now: float
    ) -> tuple[bool, int, float]:
        """Token bucket shared by every process of this project on this store: ``(allowed, remaining, reset_at)``."""
        rate = limit / per_seconds
        namespace = self.namespace or ""
        with self._write() as conn:
            row = conn.execute(
                "SELECT tokens, updated_at FROM quota_buckets WHERE namespace = ? AND quota = ? AND key = ?",
                (namespace, quota, key),
            ).fetchone()
            tokens = (
                float(limit) if row is None else min(float(limit), row[0] + (now - row[1]) * rate)
            )
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            conn.execute(
                "INSERT OR REPLACE INTO quota_buckets (namespace, quota, key, tokens, updated_at) VALUES (?, ?, ?, ?, ?)",
                (namespace, quota, key, tokens, now),
            )
        reset_at = now + (limit - tokens) / rate
        return allowed, int(tokens), reset_at
