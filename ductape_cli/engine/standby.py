"""Worker processes beyond a host's cores stand by while the cores are busy (issue 19).

Every step of every run is a write, and a SQLite store takes one writer at a
time: once as many workers as the host has cores keep them busy, another
worker process only adds switching between processes (four workers drained a
queue at 0.75× the rate of two on a two-core machine, each run costing a third
more CPU). So at most `limit` workers of one store and one set of `--workflow`
tags take runs at once on a host, each holding a slot: an advisory `flock` of
`<store>-workers/<key>.<n>`, which the kernel drops when its holder dies, so a
standing-by worker takes over at once. A worker with nothing to do gives its
slot back. One without a slot still joins in while a whole core sits idle
(steps that wait on the network leave the cores idle, and more workers then do
mean more runs at once), read from `/proc/stat`; where that file is missing,
and on stores that are not a local file, workers never stand by. (The worker
also claims while a lease has gone stale: a stopped holder keeps its slot.)
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine

log = logging.getLogger("ductape.worker")
PROC_STAT = "/proc/stat"
REPORT_EVERY = 60.0  # seconds between two reports of the same change (standing by, taking runs)


def host_cores() -> int:
    """The cores this process may run on (its affinity, where the platform tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class IdleCores:
    """How many of the host's cores sat idle since the last reading, from `/proc/stat`."""

    def __init__(self, path: str = PROC_STAT) -> None:
        self.path = path
        self._cpus = os.cpu_count() or 1  # /proc/stat's first line is every CPU of the host
        self._last = self._read()
        self._idle = 0.0

    @property
    def available(self) -> bool:
        return self._last is not None

    def _read(self) -> tuple[int, int] | None:
        try:
            with open(self.path, encoding="ascii") as stat:
                fields = stat.readline().split()
        except OSError:
            return None
        if not fields or fields[0] != "cpu" or len(fields) < 5:
            return None
        # user nice system idle iowait irq softirq steal (guest time is already in user)
        try:
            ticks = [int(v) for v in fields[1:9]]
        except ValueError:
            return None
        return ticks[3] + ticks[4], sum(ticks)

    def read(self) -> float:
        """Idle cores since the last call (the last figure again if no tick has passed)."""
        now = self._read()
        if now is None or self._last is None:
            return 0.0
        idle, total = now[0] - self._last[0], now[1] - self._last[1]
        if total > 0:
            self._idle = self._cpus * idle / total
            self._last = now
        return self._idle


class Standby:
    """Whether this worker may take runs now; a worker holds at most one slot."""

    def __init__(
        self,
        folder: Path,
        key: str,
        limit: int,
        *,
        join_when_idle: bool = True,
        every: float = 0.25,
        idle_cores: IdleCores | None = None,
        report: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.folder = folder
        self.key = key
        self.limit = limit
        self.join_when_idle = join_when_idle
        self.every = every  # seconds between looks while standing by
        self.idle_cores = idle_cores if idle_cores is not None else IdleCores()
        self.report = report
        self._lock = threading.Lock()
        self._fd = -1
        self._slot: int | None = None
        self._standing_by = False
        self._looked_at: float | None = None
        self._allowed = False
        self._said: dict[str, float] = {}

    @classmethod
    def for_engine(
        cls,
        engine: Engine,
        tags: Sequence[str] | None,
        *,
        every: float = 0.25,
        report: Callable[[str], None] = lambda line: None,
    ) -> Standby | None:
        """The standby of a worker of `engine`'s store, or None where every worker takes runs:
        a store that is not a local file, `[worker] active_per_host = 0`, or no `/proc/stat`."""
        from ductape_cli.store import is_postgres

        path = engine.store_path
        config = engine.config
        limit = host_cores() if config.active_per_host is None else config.active_per_host
        if path == ":memory:" or is_postgres(path) or limit == 0:
            return None
        idle_cores = IdleCores()
        if not idle_cores.available:
            return None
        which = f"{config.store_namespace}|{','.join(sorted(tags or ())) or '*'}"
        return cls(
            Path(os.path.realpath(path) + "-workers"),
            f"{zlib.crc32(which.encode()):08x}",
            limit,
            join_when_idle=config.join_when_idle,
            every=every,
            idle_cores=idle_cores,
            report=report,
        )

    @property
    def standing_by(self) -> bool:
        return self._standing_by

    def may_take(self) -> bool:
        """True while this worker holds a slot, takes a free one, or a whole core sits idle."""
        with self._lock:
            if self._slot is not None:
                return True
            now = time.monotonic()
            if self._looked_at is not None and now - self._looked_at < self.every:
                return self._allowed
            self._looked_at = now
            self._allowed = self._take_slot() or self._join()
            if self._allowed and self._standing_by:
                self._standing_by = False
                self._say("taking runs again")
            elif not self._allowed and not self._standing_by:
                self._standing_by = True
                many = self.limit != 1
                self._say(
                    f"standing by: {self.limit} worker{'s' * many} of this store already"
                    f" take{'' if many else 's'} runs on this host; taking over when one stops"
                )
            return self._allowed

    def give_back(self) -> None:
        """Nothing to do: free the slot for a worker that has something."""
        with self._lock:
            if self._slot is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd, self._slot = -1, None
                self._looked_at = None

    close = give_back

    def _take_slot(self) -> bool:
        try:
            self.folder.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            log.debug("no worker slots at %s (%s); taking runs", self.folder, exc)
            return True
        for n in range(self.limit):
            fd = -1
            try:
                fd = os.open(
                    self.folder / f"{self.key}.{n}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
                )
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            except OSError as exc:  # unwritable, or a file system without flock: no standby
                if fd >= 0:
                    os.close(fd)
                log.debug("no worker slot at %s (%s); taking runs", self.folder, exc)
                return True
            self._fd, self._slot = fd, n
            return True
        return False

    def _join(self) -> bool:
        return self.join_when_idle and self.idle_cores.read() >= 1.0

    def _say(self, line: str) -> None:
        """Report a change of state, each kind at most once a minute (the cores' load can
        swing around the threshold between polls); the debug log has every one."""
        kind = line.split(":")[0]
        now = time.monotonic()
        if now - self._said.get(kind, -REPORT_EVERY) < REPORT_EVERY:
            log.debug(line)
            return
        self._said[kind] = now
        log.info(line)
        self.report(line)
