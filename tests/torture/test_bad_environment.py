"""Bad environments: a read-only store, an uncreatable folder, a full disk, a corrupt file.

Each is one clear line and exit 2, and the store is never left half-migrated.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from ductape_cli.store.migrations import MIGRATIONS
from tests.conftest import CONFIG, ductape_cmd, ductape_subprocess_env

FLOW = """
from ductape_cli import workflow

@workflow("big")
async def big(ctx):
    for i in range(int(ctx.default(ctx.input.steps, 3))):
        await ctx.step(f"s{i}", lambda: "x" * int(ctx.default(ctx.input.size, 10)))
    return "done"
"""


def make_project(root: Path) -> Path:
    (root / "workflows").mkdir(parents=True)
    (root / "ductape.toml").write_text(CONFIG)
    (root / "workflows" / "big.py").write_text(FLOW)
    return root


def ductape(
    root: Path, *args: str, preexec=None, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = ductape_subprocess_env(root)
    env.update(env_extra or {})
    return subprocess.run(
        ductape_cmd(*args),
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=preexec,
    )


def one_clear_line(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def schema_state(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[
            0
        ]
    finally:
        conn.close()
    return version, tables


def test_store_folder_that_cannot_be_created(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    (tmp_path / "blocker").write_text("a file, not a folder")
    result = ductape(
        root,
        "run",
        "big",
        env_extra={"DUCTAPE_STORE": str(tmp_path / "blocker" / "sub" / "state.db")},
    )
    one_clear_line(result, "cannot create store folder")


def test_corrupt_store_file(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    store = root / ".ductape" / "state.db"
    store.parent.mkdir()
    store.write_bytes(os.urandom(8192))
    for args in (["run", "big"], ["list"], ["status", "wf_x"]):
        one_clear_line(ductape(root, *args), "corrupt or not a ductape store")


def test_read_only_store_file(tmp_path: Path) -> None:
    # Root ignores file modes, so the file is made immutable instead (ext4/xfs `chattr +i`).
    root = make_project(tmp_path / "p")
    assert ductape(root, "run", "big").returncode == 0
    store = root / ".ductape" / "state.db"
    if subprocess.run(["chattr", "+i", str(store)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem cannot make a file immutable")
    try:
        result = ductape(root, "run", "big")
        one_clear_line(result, "store")
        assert "read-only" in result.stderr or "cannot open store" in result.stderr, result.stderr
    finally:
        subprocess.run(["chattr", "-i", str(store)], capture_output=True)
    assert ductape(root, "list", "--json").returncode == 0


def _limit_file_size(size: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return apply


def test_full_disk_mid_run_is_a_clear_error_and_the_store_survives(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    assert ductape(root, "run", "big").returncode == 0
    store = root / ".ductape" / "state.db"
    before = store.stat().st_size  # RLIMIT_FSIZE caps each file: the WAL fills up first
    result = ductape(
        root,
        "run",
        "big",
        "--input",
        '{"steps": 50, "size": 20000}',
        preexec=_limit_file_size(before + 40_000),
    )
    one_clear_line(result, "cannot write store")
    assert schema_state(store)[0] == len(MIGRATIONS)
    conn = sqlite3.connect(store)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert ductape(root, "list", "--json").returncode == 0


def test_migration_on_a_full_disk_is_never_half_applied(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    result = ductape(root, "run", "big", preexec=_limit_file_size(6000))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    store = root / ".ductape" / "state.db"
    if store.exists():
        version, tables = schema_state(store)
        assert (version, tables) in ((0, 0), (len(MIGRATIONS), tables)) and (version == 0) == (
            tables == 0
        )
    assert ductape(root, "run", "big").returncode == 0  # with room again, the store migrates fully
    assert schema_state(store)[0] == len(MIGRATIONS)
