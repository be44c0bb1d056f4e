"""User data is text, never markup; pipes get plain lines; terminals get Rich (issue 15, items 1-6)."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ductape_cmd, ductape_subprocess_env

NASTY = [
    "[bold]x[/bold]",
    "[/tmp]",
    "[true, false]",
    ":smile:",
    "[link=http://x]y[/link]",
    "\\[z]",
    "[red",
]

ECHO = """
from ductape_cli import workflow


def explode(text):
    raise RuntimeError(text)


@workflow("echo", rollback_strategy="none", record_input={"text": "t", "tag": "first", "wait": False, "fail": False}, signals={"go": {}}, queries={"peek": lambda ctx: {"text": ctx.input.text}})
async def echo(ctx):
    text = ctx.input.text
    ctx.log.info(text, {"text": text})
    first = await ctx.step(ctx.input.tag or "first", lambda: {"text": text, "flags": [True, False]})
    ctx.emit_event(text, {"text": text})
    await ctx.checkpoint("saved", {"text": text})
    if ctx.input.wait:
        await ctx.wait_for_signal("go")
    if ctx.input.fail:
        await ctx.step("boom", lambda: explode(text))
    return {"text": first["text"], "list": [True, False]}
"""


@pytest.fixture
def echo(project: Any) -> Any:
    project.write("echo", ECHO)
    return project


BOX = set("─│├└┌┐┘┬┴┼╭╮╯╰━┃")


# -- item 1: data is never markup -------------------------------------------------------


@pytest.mark.parametrize("text", NASTY)
def test_piped_status_step_and_history_print_user_data_verbatim(
    echo: Any, cli: Any, text: str
) -> None:
    run = cli(
        "run", "echo", "--input", json.dumps({"text": text, "tag": text, "fail": True}), "--json"
    )
    assert run.exit_code == 1, run.stderr
    run_id = run.json()["workflow_id"]
    status = cli("status", run_id)
    assert status.exit_code == 1, status.stderr
    assert status.stdout.count(text) >= 3  # the step tag, the error under boom, the error line
    step = cli("step", run_id, text)
    assert step.exit_code == 0 and text in step.stdout
    history = cli("history", run_id)
    assert history.exit_code == 0 and text in history.stdout


def test_status_piped_through_cat_does_not_crash_on_markup(echo: Any, tmp_path: Path) -> None:
    env = ductape_subprocess_env(echo.root)
    made = subprocess.run(
        ductape_cmd("run", "echo", "--input", '{"text": "[/tmp]"}', "--json"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    run_id = json.loads(made.stdout)["workflow_id"]
    piped = subprocess.run(
        " ".join(ductape_cmd("status", run_id)) + " | cat",
        shell=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "MarkupError" not in piped.stderr and "Traceback" not in piped.stderr
    assert '"text": "[/tmp]"' in piped.stdout


def _pty_run(args: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Run the CLI with stdout on a pseudo-terminal (what a person sees); return its exit code and output."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


def test_run_on_a_terminal_prints_markup_like_output_and_exits_0(echo: Any) -> None:
    env = {**ductape_subprocess_env(echo.root), "TERM": "xterm", "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    code, screen = _pty_run(
        ductape_cmd("run", "echo", "--input", '{"text": "[bold]x[/bold]"}'), env
    )
    assert code == 0, screen
    assert "MarkupError" not in screen
    assert '"text": "[bold]x[/bold]"' in screen and "[true, false]" in screen


# -- the property: every view renders any string verbatim, on a terminal and to a pipe ---------

TEXT = st.one_of(
    st.sampled_from(NASTY),
    st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Zs")), min_size=1, max_size=24
    ),
)


def _render(view: str, data: Any, terminal: bool, monkeypatch: Any) -> str:
    from ductape_cli.render import output

    monkeypatch.setenv("TTY_COMPATIBLE", "1" if terminal else "0")
    monkeypatch.setenv("COLUMNS", "2000")
    out = io.StringIO()
    output.show(view, data, stream=out)
    return re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())


def _views_of(eng: Any, text: str) -> dict[str, tuple[Any, list[str]]]:
    """Every view's data, made by the real engine from runs whose data is `text`; with what must appear."""
    from ductape_cli.definitions import Changes, Defined, DefineReport

    raw, js = text, json.dumps(text, ensure_ascii=False)[1:-1]
    done = eng.run("echo", {"text": text, "tag": text})
    failed = eng.run("echo", {"text": text, "fail": True})
    waiting = eng.run("echo", {"text": text, "wait": True})
    cancelled = eng.cancel(waiting["workflow_id"], text)
    replayed = eng.replay(done["workflow_id"], reason=text)
    schema = {
        "steps": [{"tag": text, "condition": f"$Input{{x}} == '{js}'", "has_rollback": True}],
        "operations": [{"kind": "step", "tag": text}, {"kind": "checkpoint", "name": text}],
        "warnings": [text],
        "options": {"rollback_strategy": "none", "signals": {text: {}}},
    }
    defined = Defined(
        text, text, "changed", "v1", "v0", schema, Changes(added=[text], removed=[text]), text
    )
    report = DefineReport([defined], errors=[text], folder=text)
    job = eng.dispatch("echo", {"text": text}, cron="0 9 * * *")
    return {
        "result": (failed, [raw]),
        "status": (eng.status(done["workflow_id"]), [raw, js]),
        "cancel": (cancelled, ["cancelled"]),
        "query": ({"text": text}, [js]),
        "runs": (eng.list_runs(), [done["workflow_id"]]),
        "timeline": (eng.history(failed["workflow_id"]), [js]),
        "step": (eng.step(done["workflow_id"], text), [raw, js]),
        "events": (eng.events(done["workflow_id"]), [raw, js]),
        "related": (eng.related(done["workflow_id"]), [raw, replayed["workflow_id"]]),
        "compare": (eng.compare(done["workflow_id"], failed["workflow_id"]), [raw]),
        "define": (report, [raw]),
        "check": (DefineReport([defined], check=True, folder=text), [raw]),
        "definition": (
            {"tag": text, "name": text, "version": "v1", "schema": schema, "versions": ["v1"]},
            [raw],
        ),
        "workflows": (
            [
                {
                    "tag": text,
                    "name": text,
                    "version": "v1",
                    "versions": 1,
                    "steps": 1,
                    "defined_at": 0,
                }
            ],
            [raw],
        ),
        "schedule": (job, [job["job_id"]]),
        "schedules": (eng.list_schedules(), [job["job_id"]]),
    }


def test_every_view_is_covered() -> None:
    from ductape_cli.render.output import VIEWS

    assert set(VIEWS) == {
        "result",
        "status",
        "cancel",
        "query",
        "runs",
        "timeline",
        "step",
        "events",
        "related",
        "compare",
        "define",
        "check",
        "definition",
        "workflows",
        "schedule",
        "schedules",
    }


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=TEXT)
def test_any_string_renders_verbatim_through_every_view(
    echo: Any, monkeypatch: Any, text: str
) -> None:
    eng = echo.engine()
    try:
        views = _views_of(eng, text)
    finally:
        eng.close()
    for name, (data, expected) in views.items():
        for terminal in (True, False):
            shown = _render(name, data, terminal, monkeypatch)
            for piece in expected:
                assert piece in shown, (name, terminal, piece, shown)
            if not terminal:
                assert not BOX & set(shown.replace(text, "")), (name, shown)


def _progress_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("step_started", {"tag": text}),
        ("log", {"level": "info", "message": text, "data": {"v": text}}),
        ("step_completed", {"tag": text, "duration_ms": 3}),
        ("step_started", {"tag": "b"}),
        ("step_retried", {"tag": "b", "attempt": 1, "error": {"message": text}}),
        ("step_failed", {"tag": "b", "error": {"message": text}}),
        ("checkpoint", {"name": text}),
        ("signal_received", {"name": text}),
        ("waiting", {"waiting": {"kind": "signal", "signals": [text]}}),
    ]


@settings(max_examples=30, deadline=None)
@given(text=TEXT)
def test_any_string_renders_verbatim_while_run_follows_a_run(text: str) -> None:
    from ductape_cli.render.live import LiveProgress, PlainProgress
    from ductape_cli.render.views import console

    plain = io.StringIO()
    progress = PlainProgress(plain)
    for kind, data in _progress_events(text):
        progress(kind, data)
    assert plain.getvalue().count(text) >= 6 and not BOX & set(plain.getvalue().replace(text, ""))
    live = LiveProgress(text)
    try:
        for kind, data in _progress_events(text):
            live(kind, data)
    finally:
        live.close()
    screen = io.StringIO()
    console(file=screen).print(live.__rich__())
    assert re.sub(r"\x1b\[[0-9;]*m", "", screen.getvalue()).count(text) >= 4


# -- item 2: pipes get plain lines ---------------------------------------------------------


def test_piped_status_and_step_are_plain_lines(echo: Any, cli: Any) -> None:
    run_id = cli("run", "echo", "--input", '{"text": "hi"}', "--json").json()["workflow_id"]
    status = cli("status", run_id).stdout
    assert not BOX & set(status), status
    assert "status: completed" in status and f"run: {run_id}" in status
    assert "  ✓ first" in status
    step = cli("step", run_id, "first").stdout
    assert not BOX & set(step), step
    assert "status: completed" in step and 'output: {"text": "hi", "flags": [true, false]}' in step


@pytest.mark.parametrize(
    "args",
    [
        ["status", "{id}"],
        ["step", "{id}", "first"],
        ["related", "{id}"],
        ["list"],
        ["history", "{id}"],
        ["events", "{id}"],
        ["define"],
        ["show", "echo"],
        ["workflows"],
        ["schedules", "list"],
        ["compare", "{id}", "{other}"],
    ],
)
def test_every_command_prints_plain_lines_to_a_pipe(echo: Any, cli: Any, args: list[str]) -> None:
    first = cli("run", "echo", "--input", '{"text": "a"}', "--json").json()["workflow_id"]
    other = cli("run", "echo", "--input", '{"text": "b"}', "--json").json()["workflow_id"]
    cli("dispatch", "echo", "--cron", "0 9 * * *")
    result = cli(*[a.format(id=first, other=other) for a in args])
    assert result.exit_code in (0,), (result.stdout, result.stderr)
    assert result.stdout.strip()
    assert not BOX & set(result.stdout), result.stdout
    assert "\x1b[" not in result.stdout


def test_a_terminal_gets_the_rich_tree(echo: Any, cli: Any, monkeypatch: Any) -> None:
    run_id = cli("run", "echo", "--input", '{"text": "hi"}', "--json").json()["workflow_id"]
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "160")
    status = re.sub(r"\x1b\[[0-9;]*m", "", cli("status", run_id).stdout)
    assert "├── ✓ first" in status or "└── ✓ first" in status


def test_the_live_tree_redraws_on_its_clock_not_on_every_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run of n quick steps drew the whole tree per event: n² lines on a terminal."""
    from ductape_cli.render.live import LiveProgress

    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich draws Live frames only on a terminal
    monkeypatch.setenv("FORCE_COLOR", "1")

    draws: list[int] = []

    class Counting(LiveProgress):
        def __rich__(self) -> Any:
            draws.append(len(self.steps))
            return super().__rich__()

    live = Counting("many")
    try:
        for n in range(200):
            live("step_started", {"tag": f"s{n}"})
            live("step_completed", {"tag": f"s{n}", "duration_ms": 1})
    finally:
        live.close()
    assert len(live.steps) == 200 and all(s["status"] == "completed" for s in live.steps.values())
    assert draws and draws[-1] == 200  # the last frame shows every step
    assert len(draws) < 20, len(draws)  # 400 events, a handful of frames
