"""Journal entries that run nothing: journaled values, checkpoints, logs and custom events.

A value (`ctx.transform.now()`, `uuid`, `random`) and a checkpoint take a
position like any durable operation, so replay returns what was recorded;
logs and custom events ride along as pending events of the next commit and
are not repeated on replay.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ductape_cli.ctx import checkpoint_name_problem
from ductape_cli.engine.journal import Journal
from ductape_cli.errors import StepError
from ductape_cli.models import EventType, OpKind, StepRecord, StepStatus
from ductape_cli.store import dumps
from ductape_cli.store.encoding import plain


class Marks:
    """Runs `ctx.checkpoint`, `ctx.log`, `ctx.emit_event` and the journaled `ctx.transform` values."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.clock = journal.clock
        self.run_id = journal.run.id
        lineage = journal.run.lineage
        self.checkpoint: tuple[str, Any, int] | None = None  # the latest: (name, data, position)
        # The checkpoint a resume restored this run from, for `ctx.restored_checkpoint`.
        self.restored: dict[str, Any] | None = (
            lineage.get("restored_checkpoint") if lineage else None
        )

    def log(self, level: str, message: str, data: dict[str, Any]) -> None:
        journal = self.journal
        if journal.replaying():
            return
        payload = {"level": level, "message": message}
        if data:
            payload["data"] = plain(data)
        journal.pending_events.append(
            (self.clock.now(), EventType.LOG, journal.current_step, payload)
        )
        journal.notify(EventType.LOG, level=level, message=message, data=data)

    def emit_custom(self, type_: str, payload: Any) -> None:
        journal = self.journal
        if journal.replaying():
            return
        data = {"event": str(type_), "payload": plain(payload)}
        journal.pending_events.append(
            (self.clock.now(), EventType.CUSTOM, journal.current_step, data)
        )

    def value(self, name: str, produce: Callable[[], Any]) -> Any:
        """`produce()` once per run; replay returns the journaled value."""
        seq, record = self.journal.next_op(OpKind.VALUE, name, ("<ctx.transform>", 0))
        if record is not None:
            return record.output
        value = produce()
        now = self.clock.now()
        self.journal.commit(
            StepRecord(
                self.run_id,
                seq,
                OpKind.VALUE,
                name,
                StepStatus.COMPLETED,
                output=value,
                started_at=now,
                ended_at=now,
            ),
            self.journal.take_events(),
        )
        return value

    async def record_checkpoint(self, name: str, data: Any, site: tuple[str, int]) -> None:
        if (problem := checkpoint_name_problem(name)) is not None:
            raise StepError(problem)
        seq, record = self.journal.next_op(OpKind.CHECKPOINT, name, site)
        if record is None:
            try:
                text = dumps(data)
            except (TypeError, ValueError):
                raise StepError(
                    f"checkpoint {name!r} data must be JSON-serialisable, got {type(data).__name__}"
                ) from None
            now = self.clock.now()
            record = StepRecord(
                self.run_id,
                seq,
                OpKind.CHECKPOINT,
                name,
                StepStatus.COMPLETED,
                output=json.loads(text),
                started_at=now,
                ended_at=now,
                source=f"{site[0]}:{site[1]}",
            )
            self.journal.commit(
                record,
                self.journal.take_events(
                    (now, EventType.CHECKPOINT_CREATED, None, {"name": name, "data": record.output})
                ),
            )
            self.journal.notify(EventType.CHECKPOINT_CREATED, name=name)
        self.checkpoint = (name, record.output, seq)
