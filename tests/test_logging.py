"""Logging: records carry the run and step they were made in; swallowed errors are logged; CLI options."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from ductape_cli.logs import configure


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """Configure `ductape` logging into a buffer, JSON lines at debug; undo it afterwards."""
    stream = io.StringIO()
    root = logging.getLogger("ductape")
    level = root.level
    handler = configure("debug", "json", stream=stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_records_made_in_a_step_carry_the_run_id_and_step(project, lines) -> None:
    project.write(
        "noisy",
        """
        import logging
        from ductape_cli import workflow

        log = logging.getLogger("ductape.user")

        def charge():
            log.info("charging")
            return 1

        @workflow("noisy")
        async def noisy(ctx):
            log.info("between steps")
            await ctx.step("charge", charge)
            await ctx.step("sync", lambda: log.info("in a thread"))
    """,
    )
    run_id = project.engine().run("noisy", {})["workflow_id"]
    mine = {r["message"]: r for r in records(lines) if r["logger"] == "ductape.user"}
    assert mine["charging"]["run_id"] == run_id and mine["charging"]["step"] == "charge"
    assert mine["in a thread"]["step"] == "sync" and mine["in a thread"]["run_id"] == run_id
    assert mine["between steps"]["run_id"] == run_id and mine["between steps"]["step"] is None
    logging.getLogger("ductape.user").info("after the run")
    assert records(lines)[-1]["run_id"] is None


def test_text_lines_name_the_run_and_step(project) -> None:
    stream = io.StringIO()
    handler = configure("info", "text", stream=stream)
    try:
        project.write(
            "texty",
            """
            import logging
            from ductape_cli import workflow

            @workflow("texty")
            async def texty(ctx):
                await ctx.step("one", lambda: logging.getLogger("ductape.user").warning("careful"))
        """,
        )
        run_id = project.engine().run("texty", {})["workflow_id"]
    finally:
        logging.getLogger("ductape").removeHandler(handler)
    assert f"WARNING ductape.user [run {run_id} step one] careful" in stream.getvalue()


def test_an_on_error_hook_that_raises_is_logged_not_hidden(project, lines) -> None:
    project.write(
        "hooked",
        """
        from ductape_cli import workflow

        def hook(exc):
            raise RuntimeError("hook broke")

        def boom():
            raise ValueError("step broke")

        @workflow("hooked")
        async def hooked(ctx):
            await ctx.step("boom", boom, options={"on_error": hook})
    """,
    )
    result = project.engine().run("hooked", {})
    assert result["status"] == "failed" and "step broke" in result["error"]["message"]
    (hook,) = [r for r in records(lines) if "on_error" in r["message"]]
    assert hook["level"] == "error" and "hook broke" in hook["exception"] and hook["step"] == "boom"


def test_a_run_the_worker_cannot_execute_is_logged_with_its_traceback(
    project, lines, monkeypatch
) -> None:
    from ductape_cli.engine.worker import Worker

    project.write(
        "plain",
        """
        from ductape_cli import workflow

        @workflow("plain")
        async def plain(ctx):
            return 1
    """,
    )
    engine = project.engine()
    engine.start("plain", {}, detach=True)

    real = engine.execute
    calls = []

    def explode_once(run, inline_wait=0.0):
        calls.append(run.id)
        if len(calls) == 1:
            raise OSError("disk on fire")
        return real(run, inline_wait=inline_wait)

    monkeypatch.setattr(engine, "execute", explode_once)
    worker = Worker(engine)
    worker.run(once=True)
    assert worker.failed == 1 and worker.processed == 1 and not hasattr(worker, "errors")
    (entry,) = [
        r
        for r in records(lines)
        if r["logger"] == "ductape.worker" and "execution failed" in r["message"]
    ]
    assert "disk on fire" in entry["exception"]


@pytest.mark.parametrize("command", ["worker", "serve", "dev"])
def test_long_running_commands_share_the_log_options(cli, command) -> None:
    help_text = cli(command, "--help").stdout
    assert "--log-level" in help_text and "--log-format" in help_text


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--log-level", "loud"],
            None,
            "--log-level must be one of debug, info, warning, error, critical, got 'loud'",
        ),
        (["--log-format", "xml"], None, "--log-format must be one of text, json, got 'xml'"),
        (
            [],
            "chatty",
            "DUCTAPE_LOG_LEVEL must be one of debug, info, warning, error, critical, got 'chatty'",
        ),
    ],
)
def test_bad_log_options_are_one_line_and_exit_2(
    project, cli, monkeypatch, args, env, message
) -> None:
    if env:
        monkeypatch.setenv("DUCTAPE_LOG_LEVEL", env)
    result = cli("worker", "--once", *args)
    assert result.exit_code == 2 and result.stderr.strip() == f"ductape: {message}"
    assert not project.store.exists()


def test_worker_logs_json_lines_at_the_chosen_level(project, cli, monkeypatch) -> None:
    project.write(
        "chatty",
        """
        import logging
        from ductape_cli import workflow

        @workflow("chatty")
        async def chatty(ctx):
            await ctx.step("say", lambda: logging.getLogger("ductape.user").info("hello from a step"))
    """,
    )
    run_id = project.engine().start("chatty", {}, detach=True)[0].id
    monkeypatch.setenv("DUCTAPE_LOG_LEVEL", "info")
    result = cli("worker", "--once", "--log-format", "json")
    assert result.exit_code == 0
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert {"message": "hello from a step", "run_id": run_id, "step": "say"}.items() <= logged[
        0
    ].items()
