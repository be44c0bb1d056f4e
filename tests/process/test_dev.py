"""`ductape dev` reacts to file changes: re-defines, keeps the last good code on an error, stops on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess

from tests.conftest import ductape_cmd, ductape_subprocess_env
from tests.process.helpers import wait_for

V1 = """
    from ductape_cli import workflow

    @workflow("dev-flow")
    async def dev_flow(ctx):
        return await ctx.step("one", lambda: 1)
"""


def edit_until(path, text: str, seen, attempts: int = 10) -> None:
    """Write the file, again if need be: the watcher may not be armed yet when dev says it is serving."""
    for _ in range(attempts):
        path.write_text(text)
        try:
            wait_for(seen, timeout=3, what="dev to notice the edit")
            return
        except AssertionError:
            continue
    raise AssertionError("dev never noticed the edit")


def test_dev_redefines_on_change_and_survives_a_broken_module(project) -> None:
    path = project.write("devflow", V1)
    log = project.root / "dev.log"
    out = log.open("w")
    proc = subprocess.Popen(
        ductape_cmd("dev"),
        cwd=project.root,
        env=ductape_subprocess_env(project.root),
        stdout=out,
        stderr=out,
    )
    try:
        wait_for(lambda: "worker running" in log.read_text(), timeout=30, what="dev to start")
        edit_until(
            path,
            path.read_text().replace('"one"', '"two"'),
            lambda: "two" in log.read_text() and log.read_text().count("worker running") >= 2,
        )
        edit_until(
            path,
            path.read_text() + "\nbroken = (\n",
            lambda: "still serving the last good code" in log.read_text(),
        )
        assert "SyntaxError" in log.read_text()
        engine = project.engine()
        assert engine.store.latest_definition("dev-flow")["schema"]["steps"][0]["tag"] == "two"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        out.close()
    assert proc.returncode in (0, 130)
    assert "stopping" in log.read_text()
