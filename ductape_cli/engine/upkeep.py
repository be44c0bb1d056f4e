"""Keeping a long-lived store healthy: retention (prune, `[retention]`), backup and vacuum.

```toml
[retention]
older_than = "30d"                # required: runs that ended longer ago than this
status = ["completed"]            # optional: only these end statuses (default: all)
workflows = ["user-onboarding"]   # optional: only these workflow tags (default: all)
batch = 500                       # optional: runs deleted per transaction
```

A worker applies `[retention]` when it starts and then once a day;
`ductape prune` with no options applies it once.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ductape_cli.config import ProjectConfig, config_error
from ductape_cli.durations import parse_duration
from ductape_cli.errors import InvalidInput, StoreError
from ductape_cli.models import TERMINAL

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine

logger = logging.getLogger("ductape.retention")

DEFAULT_BATCH = 500
RETENTION_INTERVAL = 86_400.0  # a worker prunes once a day
_ENDED = sorted(str(s) for s in TERMINAL)


@dataclass
class RetentionPolicy:
    older_than_ms: int
    statuses: list[str] = field(default_factory=list)
    workflows: list[str] = field(default_factory=list)
    batch: int = DEFAULT_BATCH

    @classmethod
    def build(
        cls,
        older_than: str | int,
        statuses: list[str] | None = None,
        workflows: list[str] | None = None,
        batch: int = DEFAULT_BATCH,
    ) -> RetentionPolicy:
        """A policy from command-line values; bad ones are `InvalidInput`."""
        ms = parse_duration(older_than, what="--older-than")
        assert ms is not None
        unknown = [s for s in statuses or [] if s not in _ENDED]
        if unknown:
            raise InvalidInput(
                f"--status {unknown[0]!r} is not an end status (use {', '.join(_ENDED)}); unfinished runs are never pruned"
            )
        if batch < 1:
            raise InvalidInput("--batch must be at least 1")
        return cls(ms, list(statuses or []), list(workflows or []), batch)


def policy_from_config(config: ProjectConfig) -> RetentionPolicy | None:
    """The `[retention]` table of ductape.toml, checked; None when there is none."""
    table = config.raw.get("retention")
    if table is None:
        return None
    where = config.path or "ductape.toml"

    def fail(key: str | None, message: str) -> InvalidInput:
        error = config_error(where, config.text, "retention", key, message)
        return InvalidInput(error.message)

    if not isinstance(table, dict):
        raise fail(None, "must be a table")
    known = {"older_than", "status", "workflows", "batch"}
    for key in table:
        if key not in known:
            raise fail(key, f"unknown key {key!r} (known: {', '.join(sorted(known))})")
    if "older_than" not in table:
        raise fail(None, 'needs older_than, e.g. older_than = "30d"')
    lists: dict[str, list[str]] = {}
    for key in ("status", "workflows"):
        value = table.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail(key, f"{key} must be a string or a list of strings")
        lists[key] = value
    batch = table.get("batch", DEFAULT_BATCH)
    if not isinstance(batch, int) or isinstance(batch, bool):
        raise fail("batch", "batch must be an integer")
    try:
        return RetentionPolicy.build(
            table["older_than"], lists["status"], lists["workflows"], batch
        )
    except InvalidInput as exc:
        key = (
            "status"
            if "status" in exc.message
            else "batch"
            if "batch" in exc.message
            else "older_than"
        )
        raise fail(
            key,
            exc.message.replace("--older-than", "older_than")
            .replace("--status", "status")
            .replace("--batch", "batch"),
        ) from None


def policy_for(
    config: ProjectConfig,
    older_than: str | None,
    statuses: list[str] | None,
    workflows: list[str] | None,
    batch: int | None = None,
) -> RetentionPolicy:
    """The policy `ductape prune` applies: its options, falling back on `[retention]` for what they leave out."""
    configured = policy_from_config(config)
    if older_than is None and configured is None:
        raise InvalidInput(
            "prune needs --older-than (e.g. --older-than 30d) or a [retention] table in ductape.toml"
        )
    base = configured or RetentionPolicy(0)
    return RetentionPolicy.build(
        older_than if older_than is not None else base.older_than_ms,
        statuses or base.statuses,
        workflows or base.workflows,
        batch or base.batch,
    )


def prune(engine: Engine, policy: RetentionPolicy, *, dry_run: bool = False) -> dict[str, Any]:
    """Delete ended runs older than the policy allows, batch by batch; report what went (or would go).

    Never touched: runs not ended, runs with an unfinished child, children of a run not ended.
    """
    if not engine.has_store():
        return _report([], policy, dry_run)
    cutoff = engine.clock.now() - policy.older_than_ms / 1000
    removed: list[tuple[str, str, str]] = []
    after = ""
    while True:
        batch = engine.store.prune_batch(
            ended_before=cutoff,
            statuses=policy.statuses or None,
            tags=policy.workflows or None,
            limit=policy.batch,
            dry_run=dry_run,
            after_id=after,
        )
        removed.extend(batch)
        if len(batch) < policy.batch:
            break
        if dry_run:
            after = batch[-1][0]
    return _report(removed, policy, dry_run)


def _report(
    removed: list[tuple[str, str, str]], policy: RetentionPolicy, dry_run: bool
) -> dict[str, Any]:
    by_workflow = Counter(tag for _, tag, _ in removed)
    by_status = Counter(status for _, _, status in removed)
    return {
        "dry_run": dry_run,
        "older_than_ms": policy.older_than_ms,
        "statuses": policy.statuses or _ENDED,
        "workflows": policy.workflows or None,
        "count": len(removed),
        "by_workflow": dict(sorted(by_workflow.items())),
        "by_status": dict(sorted(by_status.items())),
        "runs": [run_id for run_id, _, _ in removed],
    }


class RetentionTimer:
    """Applies a policy when first ticked and then every `interval` seconds of the engine's clock (the worker's daily prune)."""

    def __init__(
        self, engine: Engine, policy: RetentionPolicy, interval: float = RETENTION_INTERVAL
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.interval = interval
        self.next_at: float | None = None

    def tick(self) -> dict[str, Any] | None:
        now = self.engine.clock.now()
        if self.next_at is not None and now < self.next_at:
            return None
        self.next_at = now + self.interval
        try:
            report = prune(self.engine, self.policy)
        except Exception:  # noqa: BLE001 - a failed prune is retried at the next interval
            logger.exception("retention prune failed; retrying in %.0fs", self.interval)
            return None
        logger.info("retention: pruned %d runs (%s)", report["count"], report["by_status"])
        return report


def backup(engine: Engine, target: str) -> dict[str, Any]:
    """A consistent copy of the store at `target` (SQLite's online backup; workers may keep writing)."""
    _sqlite_only(engine, "backup", "pg_dump")
    path = Path(target)
    if path.exists():
        raise InvalidInput(f"{path} already exists; choose a new file (a backup never overwrites)")
    if not path.parent.is_dir():
        raise InvalidInput(f"folder {path.parent} does not exist")
    if not engine.has_store():
        raise InvalidInput(f"no store at {engine.store_path} yet; nothing to back up")
    size = engine.store.backup(path)
    return {"store": engine.store_path, "backup": str(path), "bytes": size}


def vacuum(engine: Engine) -> dict[str, Any]:
    """Return the space that pruned runs freed to the disk."""
    _sqlite_only(engine, "vacuum", "VACUUM (ANALYZE)")
    if not engine.has_store():
        raise InvalidInput(f"no store at {engine.store_path} yet; nothing to vacuum")
    before, after = engine.store.vacuum()
    return {"store": engine.store_path, "bytes_before": before, "bytes_after": after}


def _sqlite_only(engine: Engine, what: str, instead: str) -> None:
    if engine.store_path == ":memory:":
        raise InvalidInput(f"store {what} needs a store file, not :memory:")
    if "://" in engine.store_path:
        raise StoreError(
            f"`ductape store {what}` is for SQLite stores; on PostgreSQL use {instead}"
        )
