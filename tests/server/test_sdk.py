"""The JavaScript client (/sdk.js) driven by Node's built-in test runner against a live serve."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.server.conftest import Served
from tests.services import need

HERE = Path(__file__).resolve().parent


def test_sdk_with_node_test_runner(served: Served) -> None:
    node = shutil.which("node")
    need("Node.js", node is not None, "no `node` on PATH")
    assert node is not None
    env = {**os.environ, "DUCTAPE_URL": served.url, "DUCTAPE_TOKEN": served.token}
    done = subprocess.run(
        [
            node,
            "--experimental-websocket",
            "--no-warnings",
            "--test",
            "--test-reporter=tap",
            str(HERE / "sdk.test.mjs"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and "# pass 5" in done.stdout, done.stdout[-2000:]
