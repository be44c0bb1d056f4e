"""The first commands through typer's runner: happy paths, exit codes, and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SAMPLE = """
    from ductape_cli import workflow

    @workflow("greet", timeout="1m")
    async def greet(ctx):
        ctx.log.info("greeting", {"name": ctx.input.name})
        hello = await ctx.step("hello", lambda: {"text": "Hello " + (ctx.input.name or "you")})
        if ctx.input.fail:
            await ctx.step("explode", lambda: 1 / 0)
        if ctx.input.wait:
            await ctx.wait_for_signal("go")
        return hello
"""


@pytest.fixture
def greet(project):
    project.write("greet", SAMPLE)
    return project


def run_count(project) -> int:
    if not project.store.exists():
        return 0
    return project.engine().store.count_runs()


def test_run_prints_the_result_shape_as_json(greet, cli) -> None:
    result = cli("run", "greet", "--input", '{"name": "Ada"}', "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert set(data) >= {
        "workflow_id",
        "status",
        "output",
        "error",
        "completed_steps",
        "failed_step",
        "execution_time",
        "rollback_result",
    }
    assert data["status"] == "completed" and data["output"] == {"text": "Hello Ada"}
    assert data["completed_steps"] == ["hello"]


def test_run_exit_codes_follow_the_status(greet, cli) -> None:
    assert cli("run", "greet", "--input", '{"fail": true}', "--json").exit_code == 1
    waiting = cli("run", "greet", "--input", '{"wait": true}', "--json")
    assert waiting.exit_code == 5
    assert waiting.json()["status"] == "running"
    assert waiting.json()["waiting"]["signals"] == ["go"]


def test_input_from_file_and_stdin(greet, cli, tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text('{"name": "File"}')
    assert (
        cli("run", "greet", "--input", "@in.json", "--json").json()["output"]["text"]
        == "Hello File"
    )
    assert (
        cli("run", "greet", "--input", "-", "--json", input='{"name": "Stdin"}').json()["output"][
            "text"
        ]
        == "Hello Stdin"
    )


def test_plain_progress_lines_when_not_a_terminal(greet, cli) -> None:
    result = cli("run", "greet", "--input", '{"name": "Ada"}')
    assert "✓ hello" in result.stdout
    assert "completed" in result.stdout


def test_workflow_id_env_context_timeout_and_detach(greet, cli) -> None:
    result = cli(
        "run",
        "greet",
        "--workflow-id",
        "custom-1",
        "--env",
        "dev",
        "--context",
        '{"source": "ci"}',
        "--timeout",
        "30s",
        "--json",
    )
    assert result.json()["workflow_id"] == "custom-1"
    detached = cli("run", "greet", "--detach", "--json")
    assert detached.exit_code == 5 and detached.json()["status"] == "pending"


def test_idempotency_key_returns_the_existing_run(greet, cli) -> None:
    first = cli("run", "greet", "--idempotency-key", "order-1", "--json").json()
    second = cli("run", "greet", "--idempotency-key", "order-1", "--json").json()
    assert first["workflow_id"] == second["workflow_id"]
    assert len(cli("list", "--json").json()) == 1


def test_status_list_history_step(greet, cli) -> None:
    run_id = cli("run", "greet", "--input", '{"name": "Ada"}', "--json").json()["workflow_id"]
    status = cli("status", run_id, "--json").json()
    assert status["status"] == "completed" and status["steps"][0]["tag"] == "hello"
    assert cli("status", run_id).exit_code == 0
    listed = cli(
        "list", "--workflow", "greet", "--status", "completed", "--limit", "5", "--json"
    ).json()
    assert [r["workflow_id"] for r in listed] == [run_id]
    assert cli("list", "--offset", "1", "--json").json() == []
    history = cli("history", run_id, "--json").json()
    assert [e["type"] for e in history["events"]] == [
        "workflow_started",
        "log",
        "step_started",
        "step_completed",
        "workflow_completed",
    ]
    assert "step_completed" in cli("history", run_id).stdout
    only = cli("history", run_id, "--type", "log", "--json").json()["events"]
    assert [e["type"] for e in only] == ["log"]
    step = cli("step", run_id, "hello", "--json").json()
    assert (
        step["status"] == "completed"
        and step["output"] == {"text": "Hello Ada"}
        and step["attempts"] == 1
    )
    assert "hello" in cli("step", run_id, "hello").stdout


def test_init_scaffolds_and_refuses_to_overwrite(cli, tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "fresh"
    assert cli("init", str(target)).exit_code == 0
    assert (target / "ductape.toml").exists() and (target / "workflows" / "hello.py").exists()
    again = cli("init", str(target))
    assert again.exit_code == 2 and "already exists" in again.stderr
    monkeypatch.chdir(target)
    assert cli("run", "hello", "--input", '{"name": "Ada"}', "--json").json()["output"] == {
        "greeting": "Hello, Ada!"
    }


def test_init_writes_any_project_name_as_valid_toml_and_keeps_the_comments(
    cli, tmp_path: Path, monkeypatch
) -> None:
    import tomllib

    name = 'Ada "the" \\ Lovelace'
    assert cli("init", str(tmp_path / "p"), "--name", name).exit_code == 0
    text = (tmp_path / "p" / "ductape.toml").read_text()
    assert tomllib.loads(text)["project"]["name"] == name
    assert '# "full" also survives power loss' in text
    monkeypatch.chdir(tmp_path / "p")
    assert cli("list", "--json").exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "greet", "--input", "{not json"], "not valid JSON"),
        (["run", "greet", "--input", "@missing.json"], "missing.json not found"),
        (["run", "nope"], "unknown workflow 'nope'"),
        (["run", "greet", "--env", "prd"], "inactive"),
        (["run", "greet", "--env", "mars"], "unknown env 'mars'"),
        (["run", "greet", "--timeout", "soon"], "invalid timeout"),
        (["run", "greet", "--context", "[1]"], "--context must be a JSON object"),
        (["run", "greet", "--workflow-id", "has space"], "invalid workflow id"),
        (["status", "wf_missing"], "no run with id 'wf_missing'"),
        (["history", "wf_missing"], "no run with id"),
        (["step", "wf_missing", "x"], "no run with id"),
        (["resume", "wf_missing"], "no run with id"),
        (["list", "--status", "weird"], "unknown status 'weird'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(greet, cli, args, message) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert run_count(greet) == 0


def test_taken_workflow_id_is_refused(greet, cli) -> None:
    cli("run", "greet", "--workflow-id", "dup-1", "--json")
    result = cli("run", "greet", "--workflow-id", "dup-1")
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert run_count(greet) == 1


def test_unknown_step_of_a_known_run(greet, cli) -> None:
    run_id = cli("run", "greet", "--json").json()["workflow_id"]
    result = cli("step", run_id, "nope")
    assert result.exit_code == 2 and "has no step 'nope'" in result.stderr


def test_broken_toml_names_file_and_line(project, cli) -> None:
    (project.root / "ductape.toml").write_text('[project]\nname = "x"\nworkflows = \n')
    result = cli("run", "anything")
    assert result.exit_code == 2
    assert "ductape.toml" in result.stderr and "line 3" in result.stderr
    assert not project.store.exists()


def test_unknown_config_key_names_file_and_line(project, cli) -> None:
    (project.root / "ductape.toml").write_text('[project]\nname = "x"\nworkflow = "wf"\n')
    result = cli("list")
    assert result.exit_code == 2
    assert "ductape.toml:3" in result.stderr and "unknown key 'workflow'" in result.stderr


def test_module_that_fails_to_import_is_reported_with_file_and_line(project, cli) -> None:
    project.write(
        "broken",
        """
        from ductape_cli import workflow

        raise RuntimeError("boom at import")
    """,
    )
    result = cli("run", "anything")
    assert result.exit_code == 2
    assert "broken.py:4" in result.stderr and "RuntimeError: boom at import" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not project.store.exists()


def test_every_command_has_help_and_is_in_the_readme(cli) -> None:
    from ductape_cli.cli.app import app

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    names += [g.name for g in app.registered_groups]
    for name in names:
        result = cli(name, "--help")
        assert result.exit_code == 0, name
        assert "Example" in result.stdout or name in {g.name for g in app.registered_groups}, name
        assert f"ductape {name}" in readme, f"README does not mention `ductape {name}`"


def test_json_output_is_pure_json(greet, cli) -> None:
    result = cli("run", "greet", "--json")
    json.loads(result.stdout)
    assert result.stderr == ""  # the compile notice is suppressed in --json mode


def test_every_command_is_mapped_to_its_family() -> None:
    """`main` builds only the invoked command's family; the table must name every command."""
    from ductape_cli.cli import app as app_module

    full = app_module.build()
    names = {c.name or c.callback.__name__ for c in full.registered_commands} | {
        g.name for g in full.registered_groups
    }
    assert names == set(app_module.COMMAND_FAMILIES)
    for name, family in app_module.COMMAND_FAMILIES.items():
        one = app_module.build((family,))
        here = {c.name or c.callback.__name__ for c in one.registered_commands} | {
            g.name for g in one.registered_groups
        }
        assert name in here, (name, family)


def test_main_runs_a_command_built_alone(greet, monkeypatch, capsys) -> None:
    import sys

    from ductape_cli.cli import app as app_module

    monkeypatch.setattr(
        sys, "argv", ["ductape", "run", "greet", "--input", '{"name": "Solo"}', "--json"]
    )
    with pytest.raises(SystemExit) as exit_info:
        app_module.main()
    assert exit_info.value.code == 0
    assert json.loads(capsys.readouterr().out)["output"] == {"text": "Hello Solo"}
