"""`ductape hook` uses its token and stores the signal in one transaction (item 6)."""

from __future__ import annotations

import sqlite3

SAMPLE = """
    from ductape_cli import workflow

    @workflow("approval")
    async def approval(ctx):
        hook = await ctx.create_hook("approve", {"doc": 1})
        ctx.set_state("token", hook.token)
        answer = await hook.wait()
        return answer
"""


def _token(project, run_id: str) -> str:
    with sqlite3.connect(project.store) as conn:
        return conn.execute("SELECT token FROM hooks WHERE run_id = ?", (run_id,)).fetchone()[0]


def test_a_failed_delivery_does_not_burn_the_token(project, cli) -> None:
    project.write("approval", SAMPLE)
    run_id = cli("run", "approval", "--json").json()["workflow_id"]
    token = _token(project, run_id)
    with sqlite3.connect(project.store) as conn:  # the signal write fails (as a crash there would)
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON signals BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        )
    failed = cli("hook", token, "--data", '{"ok": true}')
    assert failed.exit_code == 2 and "Traceback" not in failed.stderr
    with sqlite3.connect(project.store) as conn:
        assert (
            conn.execute("SELECT used_at FROM hooks WHERE token = ?", (token,)).fetchone()[0]
            is None
        )
        conn.execute("DROP TRIGGER refuse")
    done = cli("hook", token, "--data", '{"ok": true}', "--json")
    assert done.exit_code == 0, done.stderr
    assert done.json()["output"]["ok"] is True
    again = cli("hook", token, "--data", "{}")
    assert again.exit_code == 2 and "already used" in again.stderr


def test_unknown_token_is_refused_without_creating_a_store(project, cli) -> None:
    project.write("approval", SAMPLE)
    result = cli("hook", "nope")
    assert result.exit_code == 2 and "unknown hook token" in result.stderr
    assert not project.store.exists()
