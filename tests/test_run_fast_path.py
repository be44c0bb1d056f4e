"""`run`, `status`, `history`, `list` without typer (cli/plain_argv.py): same results, codes and errors as typer's."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ductape_cli.cli import run_command
from ductape_cli.cli.history_command import HISTORY_OPTIONS, fast_history, show_history
from ductape_cli.cli.list_command import (
    LIMIT_RANGE,
    LIST_OPTIONS,
    OFFSET_RANGE,
    fast_list,
    parse_list_args,
    show_runs,
    within,
)
from ductape_cli.cli.plain_argv import Options, parse_plain
from ductape_cli.cli.read_command import PLAIN_READS, fast_read
from ductape_cli.cli.run_command import RUN_OPTIONS, fast_run, parse_run_args
from ductape_cli.cli.signal_command import (
    CANCEL_OPTIONS,
    SIGNAL_OPTIONS,
    cancel_run,
    fast_cancel,
    fast_signal,
    send_signal,
)
from ductape_cli.cli.status_command import STATUS_OPTIONS, fast_status, show_status
from tests.conftest import ductape_subprocess_env

SAMPLE = """
    from ductape_cli import workflow

    @workflow("greet", timeout="1m")
    async def greet(ctx):
        hello = await ctx.step("hello", lambda: {"text": "Hello " + (ctx.input.name or "you")})
        if ctx.input.fail:
            await ctx.step("explode", lambda: 1 / 0)
        return hello


    @workflow("gate", signals={"go": {}})
    async def gate(ctx):
        got = await ctx.wait_for_signal("go")
        return {"got": got}
"""


@pytest.fixture
def greet(project: Any, cli: Any) -> Any:
    project.write("greet", SAMPLE)
    cli("run", "greet", "--json")  # records the definition: its one-time notice is not compared
    return project


BODIES = {
    "run": run_command.run_workflow,
    "status": show_status,
    "history": show_history,
    "list": show_runs,
    "signal": send_signal,
    "cancel": cancel_run,
}
READ_FAMILIES = {
    "step": "inspect_cmds",
    "events": "inspect_cmds",
    "workflows": "define_cmds",
    "show": "define_cmds",
    "related": "lineage_cmds",
    "compare": "lineage_cmds",
    "query": "run_cmds",
}


@pytest.mark.parametrize(
    ("name", "family", "arguments", "options", "typer_only"),
    [
        ("run", "run_cmds", 1, RUN_OPTIONS, set()),
        ("status", "inspect_cmds", 1, STATUS_OPTIONS, set()),
        ("history", "inspect_cmds", 1, HISTORY_OPTIONS, {"--type", "-t"}),
        ("list", "inspect_cmds", 0, LIST_OPTIONS, set()),
    ]
    + [
        ("signal", "run_cmds", 2, SIGNAL_OPTIONS, set()),
        ("cancel", "run_cmds", 1, CANCEL_OPTIONS, set()),
    ]
    + [
        (name, family, PLAIN_READS[name][1], PLAIN_READS[name][0], set())
        for name, family in READ_FAMILIES.items()
    ],
)
def test_the_option_table_is_the_typer_commands(
    name: str, family: str, arguments: int, options: Options, typer_only: set[str]
) -> None:
    """Every option of the typer command (but those left to typer) is in the table, the same, and no other."""
    import typer

    from ductape_cli.cli.app import COMMAND_FAMILIES, PLAIN_COMMANDS
    from ductape_cli.cli.typer_app import build

    assert COMMAND_FAMILIES[name] == family and name in PLAIN_COMMANDS
    command = typer.main.get_command(build((family,))).commands[name]
    given = [p.name for p in command.params if p.param_type_name == "argument"]
    assert len(given) == arguments
    table: Options = {}
    for param in command.params:
        if param.param_type_name == "argument" or param.name == "help":
            continue
        for opt in param.opts:
            table[opt] = (param.name, True if param.is_flag else None)
        for opt in param.secondary_opts:  # --no-annotations
            table[opt] = (param.name, False)
    assert {opt: kind for opt, kind in table.items() if opt not in typer_only} == options
    assert typer_only <= set(table)
    # the body takes the typer command's arguments in its order, and its options' defaults
    body = inspect.signature(BODIES.get(name) or PLAIN_READS[name][2]).parameters
    assert [p for p in body if body[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD] == given
    for param in command.params:
        if param.param_type_name == "option" and param.name in body:
            assert body[param.name].default == param.default, param.name


def test_list_limits_are_the_typer_commands() -> None:
    import typer

    from ductape_cli.cli.typer_app import build

    command = typer.main.get_command(build(("inspect_cmds",))).commands["list"]
    ranges = {
        p.name: (p.type.min, p.type.max) for p in command.params if p.name in ("limit", "offset")
    }
    assert ranges == {"limit": LIMIT_RANGE, "offset": OFFSET_RANGE}
    to_limit = within(*LIMIT_RANGE)
    assert to_limit("1") == 1 and to_limit("10000") == 10_000 and to_limit(" 7 ") == 7
    for bad in ("0", "10001", "x", ""):
        with pytest.raises(ValueError):
            to_limit(bad)


PLAIN = [
    ["greet", "--json"],
    ["greet"],
    ["greet", "--input", '{"name": "Ada"}', "--json"],
    ["greet", "-i", '{"name": "Ada"}'],
    ["--json", "--input={}", "greet"],
    ["greet", "--input", '{"fail": true}', "--json"],
    ["greet", "--json", "--json", "--input", "{}", "--input", '{"name": "Bo"}'],
    ["greet", "--input", "{bad", "--json"],
    ["greet", "--input", "null"],
    ["greet", "--input", "--json"],
    ["greet", "--context", "[1]"],
    ["greet", "--timeout", "soon"],
    ["greet", "--env", "nowhere"],
    ["greet", "--junit", "."],
    ["greet", "--junit", "missing-folder/out.xml"],
    ["greet", "--input", "@missing.json"],
    ["nope", "--json"],
    ["greet", "--detach", "--json"],
    ["greet", "--no-annotations", "--wait", "--json"],
]


def _same(text: str) -> str:
    """Output with what differs between two runs of the same thing (ids, times) blanked."""
    text = re.sub(r"wf_[0-9a-f]+", "wf_X", text)
    text = re.sub(r'"execution_time": \d+', '"execution_time": 0', text)
    return re.sub(r"\d+ms", "Nms", text)


@pytest.mark.parametrize("args", PLAIN, ids=lambda a: " ".join(a))
def test_fast_path_and_typer_agree(
    greet: Any,
    cli: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
) -> None:
    assert parse_run_args(args) is not None
    monkeypatch.setattr(
        run_command, "load_engine", lambda: None
    )  # no gc.freeze in the test process
    code = fast_run(args)
    fast = capsys.readouterr()
    typer_result = cli("run", *args)
    assert code == typer_result.exit_code
    assert _same(fast.out) == _same(typer_result.stdout)
    assert _same(fast.err) == _same(typer_result.stderr)
    if code == 2:  # bad input: one line on stderr
        assert len(fast.err.strip().splitlines()) == 1, fast.err


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--help"],
        ["greet", "-h"],
        ["greet", "--bogus"],
        ["greet", "other"],
        ["greet", "--input"],
        ["--", "greet"],
        ["greet", "--json=yes"],
        ["-i{}", "greet"],
        ["greet", "-i=x"],
    ],
    ids=lambda a: " ".join(a) or "(none)",
)
def test_anything_unusual_is_left_to_typer(args: list[str]) -> None:
    assert parse_run_args(args) is None
    assert parse_plain(args, STATUS_OPTIONS) is None
    assert parse_list_args(args) is None or args == []  # `list` takes no argument


def test_the_value_of_an_option_is_the_next_token_as_click_takes_it() -> None:
    assert parse_run_args(["--input", "--json", "t"]) == (["t"], {"input": "--json"})
    assert parse_run_args(["t", "--junit", "out.xml", "--no-annotations"]) == (
        ["t"],
        {"junit": Path("out.xml"), "annotations": False},
    )
    assert parse_run_args(["-", "--env=prd"]) == (["-"], {"env": "prd"})
    assert parse_list_args(["-n", "5", "--offset=2"]) == ([], {"limit": 5, "offset": 2})
    for bad in (["-n", "0"], ["--limit", "many"], ["--offset", "-1"], ["extra"]):
        assert parse_list_args(bad) is None, bad


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["run", "greet", "--bogus"], "No such option: --bogus"),
        (["status"], "Missing argument 'RUN_ID'"),
    ],
)
def test_main_sends_unusual_argv_to_typer(greet: Any, argv: list[str], error: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ductape_cli", *argv],
        cwd=greet.root,
        env=ductape_subprocess_env(greet.root),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert error in done.stderr


def _status_argvs(run_id: str, failed_id: str) -> list[list[str]]:
    return [
        [run_id],
        [run_id, "--json"],
        ["--json", run_id[-6:]],
        [failed_id],
        [failed_id, "--json", "--json"],
        ["nope"],
        ["wf_"],
        ["-"],
    ]


def test_history_fast_path_and_typer_agree(
    greet: Any, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = cli("run", "greet", "--json").json()["workflow_id"]
    for args in (
        [run_id],
        [run_id, "--json"],
        [run_id[-6:], "-f"],
        ["--follow", run_id, "--json"],
        ["nope"],
    ):
        code = fast_history(args)
        fast = capsys.readouterr()
        typer_result = cli("history", *args)
        assert code == typer_result.exit_code, args
        assert fast.out == typer_result.stdout, args
        assert fast.err == typer_result.stderr, args
    assert parse_plain([run_id, "--type", "step_completed"], HISTORY_OPTIONS) is None  # typer's


def test_list_fast_path_and_typer_agree(
    greet: Any, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cli("run", "greet", "--input", '{"fail": true}', "--json")
    for args in (
        [],
        ["--json"],
        ["-n", "1", "--offset", "1"],
        ["--workflow", "greet", "--status", "failed", "--json"],
        ["-w", "nope"],
        ["--status", "bogus"],
        ["--parent", "wf_nope", "--schedule", "s"],
    ):
        code = fast_list(args)
        fast = capsys.readouterr()
        typer_result = cli("list", *args)
        assert code == typer_result.exit_code, args
        assert fast.out == typer_result.stdout, args
        assert fast.err == typer_result.stderr, args
        if code == 2:
            assert len(fast.err.strip().splitlines()) == 1, fast.err


def test_status_fast_path_and_typer_agree(
    greet: Any, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = cli("run", "greet", "--json").json()["workflow_id"]
    failed_id = cli("run", "greet", "--input", '{"fail": true}', "--json").json()["workflow_id"]
    for args in _status_argvs(run_id, failed_id):
        code = fast_status(args)
        fast = capsys.readouterr()
        typer_result = cli("status", *args)
        assert code == typer_result.exit_code, args
        assert fast.out == typer_result.stdout, args
        assert fast.err == typer_result.stderr, args
        if code == 2:
            assert len(fast.err.strip().splitlines()) == 1, fast.err


HEAVY = ("typer", "click", "rich", "ssl", "_ssl", "tomllib", "hashlib", "uuid")


def _loaded_after(project: Any, argv: list[str]) -> subprocess.CompletedProcess[str]:
    probe = (
        f"import sys; sys.argv = {['ductape', *argv]!r}\n"
        "from ductape_cli.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules), code, file=sys.stderr)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", probe],
        cwd=project.root,
        env=ductape_subprocess_env(project.root),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_piped_run_and_status_import_nothing_heavy(greet: Any) -> None:
    """The start-up a plain piped `run` or reading command does not pay for; a regression costs every call."""
    _loaded_after(greet, ["run", "greet", "--json"])  # fills ductape.toml's cache: no tomllib next
    done = _loaded_after(greet, ["run", "greet", "--json"])
    assert json.loads(done.stdout)["status"] == "completed"
    assert "LOADED [] 0" in done.stderr, done.stderr
    run_id = json.loads(done.stdout)["workflow_id"]
    done = _loaded_after(greet, ["run", "greet"])
    assert "status: completed" in done.stdout
    assert "LOADED [] 0" in done.stderr, done.stderr
    other_id = re.findall(r"^run: (wf_\w+)", done.stdout, re.M)[0]
    for argv, shows in (
        (["status", run_id], run_id),
        (["status", run_id, "--json"], run_id),
        (["history", run_id], "workflow_completed"),
        (["list", "--limit", "5"], run_id[-6:]),
        (["step", run_id, "hello"], "attempts"),
        (["events", run_id, "--json"], "[]"),
        (["workflows"], "greet"),
        (["show", "greet"], "hello"),
        (["related", run_id], run_id),
        (["compare", run_id, other_id], "0 input field(s)"),
    ):
        done = _loaded_after(greet, argv)
        assert shows in done.stdout
        assert "LOADED [] 0" in done.stderr, done.stderr
    for argv, shows, code in (
        (["signal", "{gate}", "go", "--json"], '"got"', 0),
        (["cancel", "{gate}", "-r", "enough"], "cancelled: true", 4),
    ):
        gate_id = json.loads(_loaded_after(greet, ["run", "gate", "--json"]).stdout)["workflow_id"]
        done = _loaded_after(greet, [a.format(gate=gate_id) for a in argv])
        assert shows in done.stdout
        assert f"LOADED [] {code}" in done.stderr, done.stderr


def _read_argvs(run_id: str, failed_id: str) -> list[list[str]]:
    return [
        ["step", run_id, "hello"],
        ["step", "--json", run_id, "hello"],
        ["step", run_id, "nope"],
        ["events", run_id],
        ["events", run_id, "-t", "x", "--json"],
        ["events", "wf_nope"],
        ["workflows"],
        ["workflows", "--json"],
        ["show", "greet"],
        ["show", "greet", "--json"],
        ["show", "greet", "-v", "zzzzzz"],
        ["show", "nope"],
        ["related", failed_id],
        ["related", run_id, "--json"],
        ["compare", run_id, failed_id],
        ["compare", run_id, failed_id, "--json"],
        ["compare", run_id, "wf_nope"],
        ["query", run_id, "progress"],
    ]


def test_read_fast_paths_and_typer_agree(
    greet: Any, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = cli("run", "greet", "--json").json()["workflow_id"]
    failed_id = cli("run", "greet", "--input", '{"fail": true}', "--json").json()["workflow_id"]
    codes = set()
    for command, *args in _read_argvs(run_id, failed_id):
        code = fast_read(command, args)
        fast = capsys.readouterr()
        typer_result = cli(command, *args)
        assert code == typer_result.exit_code, args
        assert fast.out == typer_result.stdout, args
        assert fast.err == typer_result.stderr, args
        codes.add(code)
        if code == 2:
            assert len(fast.err.strip().splitlines()) == 1, fast.err
    assert codes >= {0, 2}  # both what is shown and what is refused were compared


def test_signal_and_cancel_fast_paths_and_typer_agree(
    greet: Any, cli: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ductape_cli.cli import signal_command

    monkeypatch.setattr(signal_command, "load_engine", lambda: None)  # no gc.freeze here
    codes = set()
    for command, fast, args in (
        ("signal", fast_signal, ["go", "--data", '{"n": 1}', "--json"]),
        ("signal", fast_signal, ["go", "-d", "{}"]),
        ("signal", fast_signal, ["go", "--no-wait", "--no-annotations", "--json"]),
        ("signal", fast_signal, ["nope", "--json"]),
        ("signal", fast_signal, ["go", "--data", "{bad"]),
        ("cancel", fast_cancel, ["--json"]),
        ("cancel", fast_cancel, ["-r", "done with it"]),
    ):
        runs = [cli("run", "gate", "--json").json()["workflow_id"] for _ in range(2)]
        code = fast([runs[0], *args])
        fast_out = capsys.readouterr()
        typer_result = cli(command, runs[1], *args)
        assert code == typer_result.exit_code, args
        assert _same(fast_out.out) == _same(typer_result.stdout), args
        assert _same(fast_out.err) == _same(typer_result.stderr), args
        codes.add(code)
        if code == 2:
            assert len(fast_out.err.strip().splitlines()) == 1, fast_out.err
    assert codes >= {0, 2, 4, 5}  # completed, refused, cancelled, still waiting
