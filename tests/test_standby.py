"""Workers beyond a host's cores stand by (engine/standby.py): slots, idle cores, config."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ductape_cli.config import load_config
from ductape_cli.engine.engine import Engine
from ductape_cli.engine.standby import IdleCores, Standby
from ductape_cli.errors import ConfigError


def stat_file(path: Path, idle: int, busy: int) -> None:
    """A /proc/stat first line: `busy` ticks of user time and `idle` idle ticks in all."""
    path.write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n")


class Cores:
    """A /proc/stat the test moves forward: `advance(idle_cores)` adds one second of ticks."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "stat"
        self.idle = self.busy = 0
        stat_file(self.path, 0, 0)

    def advance(self, idle_cores: float) -> None:
        cores = os.cpu_count() or 1
        self.idle += round(100 * idle_cores)
        self.busy += round(100 * (cores - idle_cores))
        stat_file(self.path, self.idle, self.busy)

    def meter(self) -> IdleCores:
        return IdleCores(str(self.path))


def standby(folder: Path, cores: Cores, key: str = "k", limit: int = 1, **kw) -> Standby:
    lines: list[str] = []
    kw.setdefault("report", lines.append)
    made = Standby(folder / "state.db-workers", key, limit, every=0, idle_cores=cores.meter(), **kw)
    made.lines = lines  # type: ignore[attr-defined]
    return made


def test_idle_cores_are_read_from_proc_stat(tmp_path) -> None:
    cores = Cores(tmp_path)
    meter = cores.meter()
    cores.advance(idle_cores=0.5)
    assert meter.read() == pytest.approx(0.5, abs=0.02)
    assert meter.read() == pytest.approx(0.5, abs=0.02)  # no tick since: the last figure
    cores.advance(idle_cores=0.0)
    assert meter.read() == 0
    assert not IdleCores(str(tmp_path / "missing")).available
    (tmp_path / "odd").write_text("cpu  a b c d e\n")
    assert not IdleCores(str(tmp_path / "odd")).available


def test_one_slot_one_worker_the_next_stands_by_until_it_is_given_back(tmp_path) -> None:
    cores = Cores(tmp_path)
    first = standby(tmp_path, cores)
    second = standby(tmp_path, cores)
    assert first.may_take()
    cores.advance(idle_cores=0.0)
    assert not second.may_take()
    assert second.lines == [  # type: ignore[attr-defined]
        "standing by: 1 worker of this store already takes runs on this host;"
        " taking over when one stops"
    ]
    first.give_back()
    assert second.may_take()
    assert second.lines[-1] == "taking runs again"  # type: ignore[attr-defined]
    assert not first.may_take()  # now the first one waits
    assert oct((tmp_path / "state.db-workers").stat().st_mode & 0o777) == "0o700"
    assert oct((tmp_path / "state.db-workers" / "k.0").stat().st_mode & 0o777) == "0o600"


def test_workers_of_other_tags_do_not_wait_for_each_other(tmp_path) -> None:
    cores = Cores(tmp_path)
    assert standby(tmp_path, cores, key="orders").may_take()
    cores.advance(idle_cores=0.0)
    assert standby(tmp_path, cores, key="emails").may_take()
    assert not standby(tmp_path, cores, key="orders").may_take()


def test_a_standing_by_worker_joins_while_a_whole_core_idles(tmp_path) -> None:
    cores = Cores(tmp_path)
    assert standby(tmp_path, cores).may_take()
    extra = standby(tmp_path, cores)
    cores.advance(idle_cores=1.5)  # the active worker waits on the network
    assert extra.may_take()
    cores.advance(idle_cores=0.4)  # the cores got busy: the extra one steps back
    assert not extra.may_take()
    strict = standby(tmp_path, cores, join_when_idle=False)
    cores.advance(idle_cores=2.0)
    assert not strict.may_take()


def test_a_dead_holders_slot_is_free_at_once(tmp_path) -> None:
    folder = tmp_path / "state.db-workers"
    folder.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(folder / 'k.0')!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        cores = Cores(tmp_path)
        waiting = standby(tmp_path, cores)
        cores.advance(idle_cores=0.0)
        assert not waiting.may_take()
        holder.kill()
        holder.wait(timeout=10)
        assert waiting.may_take()
    finally:
        holder.kill()


def test_a_slot_that_cannot_be_opened_means_taking_runs(tmp_path) -> None:
    """Standing by is an optimisation: where the slots cannot be kept, every worker works."""
    cores = Cores(tmp_path)
    (tmp_path / "state.db-workers" / "k.0").mkdir(parents=True)  # not a file: open() fails
    lines: list[str] = []
    assert Standby(
        tmp_path / "state.db-workers",
        "k",
        1,
        every=0,
        idle_cores=cores.meter(),
        report=lines.append,
    ).may_take()
    (tmp_path / "other").write_text("")  # a file where the folder should be
    assert Standby(tmp_path / "other", "k", 1, every=0, idle_cores=cores.meter()).may_take()
    assert lines == []


def test_a_looked_at_answer_holds_for_the_poll_interval(tmp_path) -> None:
    cores = Cores(tmp_path)
    first = standby(tmp_path, cores)
    assert first.may_take()
    second = Standby(tmp_path / "state.db-workers", "k", 1, every=30, idle_cores=cores.meter())
    cores.advance(idle_cores=0.0)
    assert not second.may_take()
    first.give_back()
    started = time.monotonic()
    assert not second.may_take()  # looked again only after `every`
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("toml", "error"),
    [
        ("active_per_host = -1", "active_per_host must be a whole number, 0 for no limit"),
        ("active_per_host = 1.5", "active_per_host must be a whole number, 0 for no limit"),
        ("active_per_host = true", "active_per_host must be a whole number, 0 for no limit"),
        ('join_when_idle = "yes"', "join_when_idle must be true or false"),
        (
            "concurency = 2",
            "unknown key 'concurency' (known: active_per_host, join_when_idle, lease)",
        ),
    ],
)
def test_bad_worker_settings_are_one_line(project, toml, error) -> None:
    with (project.root / "ductape.toml").open("a") as f:
        f.write(f"\n[worker]\n{toml}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(project.root)
    assert caught.value.message.endswith(f"[worker] {error}"), caught.value.message


def test_the_standby_follows_the_project_and_the_store(project) -> None:
    with (project.root / "ductape.toml").open("a") as f:
        f.write("\n[worker]\nactive_per_host = 3\njoin_when_idle = false\n")
    engine = Engine(load_config(project.root))
    made = Standby.for_engine(engine, ["b", "a"])
    if engine.store_path.startswith("postgresql"):
        assert made is None  # runs on PostgreSQL are claimed row by row: nothing to stand by for
        return
    if not Path("/proc/stat").exists():
        assert made is None
        return
    assert made is not None
    assert made.limit == 3 and made.join_when_idle is False
    assert made.folder == Path(os.path.realpath(engine.store_path) + "-workers")
    assert made.key == Standby.for_engine(engine, ["a", "b"]).key  # type: ignore[union-attr]
    assert made.key != Standby.for_engine(engine, None).key  # type: ignore[union-attr]


def test_no_limit_means_no_standby(project) -> None:
    with (project.root / "ductape.toml").open("a") as f:
        f.write("\n[worker]\nactive_per_host = 0\n")
    assert Standby.for_engine(Engine(load_config(project.root)), None) is None
