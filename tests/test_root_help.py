"""`ductape --help` at 80 columns or more is the committed text (`cli/root_help.py`), which must be
what typer prints.

Regenerate the text after changing a command's name or first docstring line:
`PYTHONPATH=$PWD python -m tests.test_root_help`.
"""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from ductape_cli.cli import root_help

REPO = Path(__file__).resolve().parent.parent
TYPER_HELP = "from ductape_cli.cli.app import app; app(['--help'], prog_name='ductape')"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "_DUCTAPE_COMPLETE")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return {**env, **extra}


def typer_help() -> str:
    """What the whole typer app prints for `--help` to a pipe (click's default width)."""
    done = subprocess.run(
        [sys.executable, "-c", TYPER_HELP],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_the_committed_help_is_what_typer_prints() -> None:
    assert root_help.TEXT == typer_help(), "run: PYTHONPATH=$PWD python -m tests.test_root_help"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_piped_help_prints_it_without_typer(flag: str) -> None:
    probe = (
        f"import sys; sys.argv = ['ductape', {flag!r}]\n"
        "from ductape_cli.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "print('LOADED', sorted(m for m in ('typer', 'click', 'rich') if m in sys.modules), code,"
        " file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=_env(), capture_output=True, text=True, timeout=60
    )
    assert done.stdout == root_help.TEXT
    assert "LOADED [] 0" in done.stderr, done.stderr


@pytest.mark.parametrize("width", ["80", "120", "400"])
def test_any_width_click_caps_gets_the_same_text(
    width: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", TYPER_HELP],
        env=_env(COLUMNS=width),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == root_help.TEXT
    monkeypatch.setenv("COLUMNS", width)
    monkeypatch.delenv("_DUCTAPE_COMPLETE", raising=False)
    assert root_help.plain([])


def test_a_wide_terminal_gets_the_text_and_a_narrow_one_typers() -> None:
    """On a pseudo-terminal (no COLUMNS): what `ductape --help` prints, at 120 and at 60 columns."""
    probe = (
        "from ductape_cli.cli.app import main; import sys; sys.argv = ['ductape', '--help']; main()"
    )
    for width, served in ((120, True), (60, False)):
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, width, 0, 0))
        proc = subprocess.Popen(
            [sys.executable, "-c", probe], stdout=follower, stderr=follower, env=_env()
        )
        os.close(follower)
        out = b""
        while chunk := _read(leader):
            out += chunk
        os.close(leader)
        assert proc.wait(timeout=60) == 0
        text = out.decode().replace("\r\n", "\n")
        assert (text == root_help.TEXT) is served, text[:300]
        assert text.startswith("Usage: ductape [OPTIONS] COMMAND [ARGS]...")


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the child closed its side
        return b""


@pytest.mark.parametrize(
    ("argv", "environ"),
    [
        ([], {"COLUMNS": "60"}),  # a width click would wrap to: typer's
        ([], {"COLUMNS": "79"}),
        ([], {"_DUCTAPE_COMPLETE": "complete_bash"}),
        (["run"], {}),  # `ductape --help run`
    ],
)
def test_anything_else_is_typers(
    argv: list[str], environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("_DUCTAPE_COMPLETE", raising=False)
    assert root_help.plain([])  # the baseline: served
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert not root_help.plain(argv)
    assert root_help.fast_help(argv) is None


def _write() -> None:
    text = typer_help()
    assert '"""' not in text and "\\" not in text
    path = REPO / "ductape_cli" / "cli" / "root_help.py"
    source = path.read_text(encoding="utf-8")
    head, _, rest = source.partition('TEXT = """\\\n')
    _, _, tail = rest.partition('"""\n')
    path.write_text(f'{head}TEXT = """\\\n{text}"""\n{tail}', encoding="utf-8")


if __name__ == "__main__":
    _write()
