"""Bad JSON anywhere a command reads it: one line on stderr, exit 2, nothing written (issue 14, items 12-14)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from ductape_cli.jsonin import MAX_DEPTH

SAMPLE = """
    from ductape_cli import workflow

    @workflow("greet", signals={"go": {}})
    async def greet(ctx):
        ctx.log.info("numbers", {"ratio": float("nan"), "big": float("inf")})
        await ctx.wait_for_signal("go")
        return {"ok": True}
"""


@pytest.fixture
def greet(project):
    project.write("greet", SAMPLE)
    return project


def _strict(text: str):
    def refuse(name: str):
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


def _runs(project) -> int:
    if not project.store.exists():
        return 0
    return project.engine().store.count_runs()


def _refused(result, *words: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr


@pytest.mark.parametrize("where", ["file", "stdin"])
def test_non_utf8_input_is_refused(greet, cli, where) -> None:
    payload = b'{"name": "caf\xe9"}'
    if where == "file":
        (greet.root / "in.json").write_bytes(payload)
        result = cli("run", "greet", "--input", "@in.json")
    else:
        result = cli("run", "greet", "--input", "-", input=payload)  # type: ignore[arg-type]
    _refused(result, "not UTF-8", "0xe9")
    assert _runs(greet) == 0


def test_non_utf8_inline_argument_is_refused(greet, cli) -> None:
    # Undecodable argv bytes reach Python as lone surrogates.
    _refused(cli("run", "greet", "--input", '{"name": "caf\udce9"}'), "not UTF-8")
    assert _runs(greet) == 0


def test_non_utf8_signal_data_is_refused_and_nothing_is_stored(greet, cli) -> None:
    run_id = cli("run", "greet", "--json").json()["workflow_id"]
    (greet.root / "data.json").write_bytes(b'{"who": "\xff"}')
    _refused(cli("signal", run_id, "go", "--data", "@data.json"), "not UTF-8")
    assert greet.engine().store.signals(run_id) == []


def test_json_nested_too_deep_is_refused(greet, cli) -> None:
    for depth in (MAX_DEPTH + 1, 980, 5000):
        _refused(cli("run", "greet", "--input", "[" * depth + "]" * depth), str(MAX_DEPTH))
    assert _runs(greet) == 0
    inner = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert (
        cli("run", "greet", "--input", f'{{"deep": {inner}}}', "--json").exit_code == 5
    )  # exactly the limit


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": Infinity}', "[-Infinity]"])
def test_nan_and_infinity_are_refused(greet, cli, text) -> None:
    _refused(cli("run", "greet", "--input", text), "not valid JSON")
    assert _runs(greet) == 0


def test_set_assignment_refuses_nan_instead_of_keeping_a_string(greet, cli) -> None:
    from ductape_cli.cli.common import parse_assignment
    from ductape_cli.errors import InvalidInput

    assert parse_assignment("name=Ada", "--set") == ("name", "Ada")
    with pytest.raises(InvalidInput):
        parse_assignment("ratio=NaN", "--set")


def test_python_api_refuses_nan_and_deep_input(greet) -> None:
    from ductape_cli.errors import InvalidInput

    engine = greet.engine()
    with pytest.raises(InvalidInput, match="NaN"):
        engine.start("greet", {"a": float("nan")})
    deep: list = []
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(InvalidInput, match="deeper"):
        engine.start("greet", {"deep": deep})
    assert engine.store.count_runs() == 0


def test_history_json_never_prints_nan(greet, cli) -> None:
    run_id = cli("run", "greet", "--json").json()["workflow_id"]
    # An older ductape could have stored a NaN: it must read back as null.
    with sqlite3.connect(greet.store) as conn:
        conn.execute("UPDATE runs SET state = '{\"x\": NaN}' WHERE id = ?", (run_id,))
    history = cli("history", run_id, "--json")
    assert history.exit_code == 0, history.stderr
    events = _strict(history.stdout)
    logs = [
        e
        for e in (events if isinstance(events, list) else events["events"])
        if e.get("type") == "log"
    ]
    assert logs and logs[0]["data"]["data"] == {"ratio": None, "big": None}
    status = cli("status", run_id, "--json")
    _strict(status.stdout)


def test_a_workflow_producing_nan_fails_cleanly_and_nothing_prints_nan(project, cli) -> None:
    project.write(
        "nans",
        """
from ductape_cli import workflow

@workflow("nans")
async def nans(ctx):
    if ctx.input.where == "state":
        ctx.set_state("ratio", float("nan"))
    if ctx.input.where == "step":
        await ctx.step("ratio", lambda: {"r": float("inf")})
    return {"r": float("nan")}
""",
    )
    for where in ("state", "step", "output"):
        result = cli("run", "nans", "--input", f'{{"where": "{where}"}}', "--json")
        assert result.exit_code == 1, (where, result.stdout, result.stderr)
        data = _strict(result.stdout)
        assert data["status"] == "failed" and "JSON" in data["error"]["message"]
        _strict(cli("history", data["workflow_id"], "--json").stdout)


def test_non_utf8_argv_bytes_in_a_real_process(greet) -> None:
    import subprocess

    from tests.conftest import ductape_cmd, ductape_subprocess_env

    args = [a.encode() for a in ductape_cmd("run", "greet", "--input")] + [b'{"name": "\xff\xfe"}']
    result = subprocess.run(
        args,
        cwd=greet.root,
        env=ductape_subprocess_env(greet.root),
        capture_output=True,
        timeout=60,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr and "not UTF-8" in stderr, stderr
    assert _runs(greet) == 0
