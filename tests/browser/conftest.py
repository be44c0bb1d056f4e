"""Browser tests: headless Chromium (Debian's package) driven by Playwright, against a live `ductape serve`.

One project and one server per module; each test makes its own runs with the
CLI in separate processes, so the pages show work done by other processes on
the store. Screenshots go to $DUCTAPE_SCREENSHOTS, or a pytest temporary folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CONFIG, ductape_cmd, ductape_subprocess_env
from tests.services import need

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "browser-test-token"

WORKFLOWS = """
import time
from pathlib import Path

from ductape_cli import workflow


def pause(result, seconds=0.3):
    time.sleep(seconds)
    return result


@workflow("quick", name="Quick")
def quick(ctx):
    for n in (1, 2, 3):
        ctx.step(f"step-{n}", lambda n=n: pause({"n": n}))
    return {"done": True}


@workflow(
    "orders",
    name="Orders",
    rollback_strategy="reverse_all",
    signals={"approved": {"approver_id": "string", "comments": "string?"}},
    branch_overrides={"check": {"ok": True}},
)
async def orders(ctx):
    check = await ctx.step("check", lambda: {"ok": ctx.input.amount < 1000})
    if not check["ok"]:
        return {"status": "refused"}
    await ctx.step("reserve", lambda: pause({"hold": "h-1"}), rollback=lambda out: pause({"released": out["hold"]}))
    await ctx.step("charge", lambda: pause({"charge": "ch-1"}), rollback=lambda out: pause({"refunded": out["charge"]}), retries=2)
    decision = await ctx.wait_for_signal(["approved"], timeout="1h")
    await ctx.step("ship", lambda: {"by": decision["approver_id"]})
    return {"status": "shipped", "by": decision["approver_id"]}


def needs_flag():
    # Fails until the test creates the flag file: a failed run to resume.
    if not Path("flag").exists():
        raise RuntimeError("flag file missing")
    return {"flag": True}


@workflow("fragile", name="Fragile")
def fragile(ctx):
    ctx.step("prepare", lambda: {"ready": True})
    ctx.step("use-flag", needs_flag)
    return {"ok": True}
"""

VERSION_1 = """
from ductape_cli import workflow


@workflow("evolving")
async def evolving(ctx):
    await ctx.step("first", lambda: 1)
"""

VERSION_2 = """
from ductape_cli import workflow


@workflow("evolving")
async def evolving(ctx):
    await ctx.step("first", lambda: 1, retries=3)
    await ctx.step("second", lambda: 2)
    await ctx.workflow("child-" + ctx.workflow_id, "quick", {})
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    root: Path
    url: str
    log: Path
    shots: Path

    def cli(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """`ductape ARGS` in its own process on the served project."""
        return subprocess.run(
            ductape_cmd(*args),
            cwd=self.root,
            env=ductape_subprocess_env(self.root),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ductape serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"ductape serve did not answer within {timeout}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A project with two workflows and `ductape serve` (with its worker) on a free port."""
    root = tmp_path_factory.mktemp("served")
    (root / "ductape.toml").write_text(CONFIG, encoding="utf-8")
    (root / "workflows").mkdir()
    (root / "workflows" / "shop.py").write_text(textwrap.dedent(WORKFLOWS), encoding="utf-8")
    (root / "workflows" / "evolving.py").write_text(VERSION_1, encoding="utf-8")
    shots = Path(
        os.environ.get("DUCTAPE_SCREENSHOTS") or tmp_path_factory.mktemp("dashboard-screenshots")
    )
    shots.mkdir(parents=True, exist_ok=True)
    env = ductape_subprocess_env(root)
    defined = subprocess.run(
        ductape_cmd("define"), cwd=root, env=env, capture_output=True, text=True, timeout=90
    )
    assert defined.returncode == 0, defined.stderr
    port = free_port()
    log = root / "serve.log"
    env["DUCTAPE_TOKEN"] = TOKEN
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ductape_cmd("serve", "--port", str(port)),
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, proc, log)
        yield Served(root, url, log, shots)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need("Chromium", CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need("Playwright", False, "the playwright package is missing (pip install -e '.[test]')")
        raise
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Any]:
    """A tab with the token already in session storage; fails the test on any script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=served.url)
    context.add_init_script(f"sessionStorage.setItem('ductape.token', {TOKEN!r})")
    context.set_default_timeout(30_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"the page reported errors: {errors}"
