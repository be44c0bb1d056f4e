"""The command line a user trusts (issue 15, items 3-17): through the real CLI, on tmp projects."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

FLOW = """
from pathlib import Path

from ductape_cli import workflow


def flaky():
    marker = Path("flaky.count")
    count = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(count + 1))
    if count == 0:
        raise RuntimeError("first attempt fails")
    return {"ok": True}


@workflow("flow", rollback_strategy="none", signals={"go": {}},
          record_input={"skip_b": False, "wait": False, "retry": False})
async def flow(ctx):
    ctx.log.info("starting flow", {"n": 1})
    await ctx.step("a", lambda: {"a": 1})
    ctx.emit_event("charged", {"id": "ch_1", "ok": True})
    if not ctx.input.skip_b:
        await ctx.step("b", lambda: {"b": 1})
    if ctx.input.retry:
        await ctx.step("flaky", flaky, retries=2, retry_delay="20ms")
    if ctx.input.wait:
        await ctx.wait_for_signal("go")
    await ctx.step("c", lambda: {"c": 1})
    ctx.log.warn("done")
    return {"done": True}
"""


@pytest.fixture
def flow(project: Any) -> Any:
    project.write("flow", FLOW)
    return project


def start(cli: Any, payload: dict[str, Any]) -> str:
    return str(
        json.loads(cli("run", "flow", "--input", json.dumps(payload), "--json").stdout)[
            "workflow_id"
        ]
    )


# -- item 3: events prints JSON payloads and ISO times --------------------------------------


def test_events_prints_json_payloads_and_iso_times(flow: Any, cli: Any) -> None:
    run_id = start(cli, {})
    lines = cli("events", run_id).stdout.strip().splitlines()
    assert len(lines) == 1
    assert (
        ISO.match(lines[0]) and "charged" in lines[0] and '{"id": "ch_1", "ok": true}' in lines[0]
    )
    data = cli("events", run_id, "--json").json()
    assert ISO.fullmatch(data[0]["timestamp"]) and data[0]["payload"] == {"id": "ch_1", "ok": True}


# -- item 4: every attempt has a start and a duration ----------------------------------------


def test_step_json_gives_every_attempt_a_start_and_duration(flow: Any, cli: Any) -> None:
    run_id = start(cli, {"retry": True})
    step = cli("step", run_id, "flaky", "--json").json()
    assert step["attempts"] == 2 and [a["attempt"] for a in step["attempt_log"]] == [1, 2]
    for attempt in step["attempt_log"]:
        assert attempt["started_at"] is not None and attempt["duration"] is not None, attempt
    first, second = step["attempt_log"]
    assert (
        second["started_at"] >= first["started_at"] + 0.02
    )  # after the failed attempt and its retry delay
    assert second["started_at"] <= step["ended_at"]
    assert "started_at" in step and step["duration"] is not None


# -- item 5: a waiting run's time, a cancelled wait, compiled order --------------------------


def test_a_waiting_run_shows_how_long_it_has_run_and_a_cancelled_wait_is_not_waiting(
    flow: Any, cli: Any
) -> None:
    waiting = cli("run", "flow", "--input", '{"wait": true}')
    assert waiting.exit_code == 5
    assert "time: 0ms" not in waiting.stdout
    run_id = re.search(r"run: (\S+)", waiting.stdout).group(1)  # type: ignore[union-attr]
    status = cli("status", run_id).stdout
    assert "time: 0ms" not in status and re.search(r"time: \S+ so far", status), status
    assert "◷ signal go" in status
    cli("cancel", run_id, "--reason", "no longer needed")
    after = cli("status", run_id)
    assert after.exit_code == 4
    assert "◷" not in after.stdout and "■ signal go" in after.stdout, after.stdout
    steps = cli("status", run_id, "--json").json()["steps"]
    assert [s["status"] for s in steps if s["tag"] == "go"] == ["cancelled"]


def test_steps_never_reached_are_listed_in_compiled_order(flow: Any, cli: Any) -> None:
    run_id = start(cli, {"skip_b": True})
    steps = cli("status", run_id, "--json").json()["steps"]
    assert [s["tag"] for s in steps if s["kind"] == "step"] == ["a", "b", "c"]
    assert steps[1]["status"] == "skipped" and steps[1]["reason"].startswith("not reached")
    tree = [
        line.split()[1]
        for line in cli("status", run_id).stdout.splitlines()
        if line.startswith("  ")
    ]
    assert [tag for tag in tree if tag in ("a", "b", "c")] == ["a", "b", "c"]


# -- item 6: ctx.log while following a run ---------------------------------------------------


def test_run_shows_log_messages_in_plain_lines(flow: Any, cli: Any) -> None:
    out = cli("run", "flow").stdout
    assert 'info: starting flow {"n": 1}' in out and "warn: done" in out
    assert out.index("info: starting flow") < out.index("✓ a") < out.index("warn: done")


def test_run_shows_log_messages_in_the_live_view(flow: Any, cli: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "160")
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", cli("run", "flow").stdout)
    assert 'info: starting flow {"n": 1}' in out and "warn: done" in out


# -- item 17: ctx.input names like dict methods: one rule --------------------------------------

INPUT_RULE = """
import json

from ductape_cli import workflow


@workflow("fields", record_input={"keys": ["k"], "items": None})
async def fields(ctx):
    return {
        "items": ctx.default(ctx.input.items, []),
        "get": ctx.input.get,
        "keys": ctx.input.keys,
        "copy": ctx.input.copy,
        "as_dict": sorted(ctx.input.to_dict().keys()),
        "via_dict": sorted(dict(ctx.input)),
        "json": json.loads(json.dumps(ctx.input)),
        "missing": ctx.input.to_dict().get("nope", "fallback"),
    }
"""


def test_input_fields_named_like_dict_methods_follow_one_rule(project: Any, cli: Any) -> None:
    project.write("fields", INPUT_RULE)
    result = cli("run", "fields", "--input", '{"keys": ["k1"], "copy": {"n": 1}}', "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.json()["output"] == {
        "items": [],
        "get": None,
        "keys": ["k1"],
        "copy": {"n": 1},
        "as_dict": ["copy", "keys"],
        "via_dict": ["copy", "keys"],
        "json": {"keys": ["k1"], "copy": {"n": 1}},
        "missing": "fallback",
    }
    assert cli("define").exit_code == 0


# -- item 7: --version from package metadata -------------------------------------------------


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_comes_from_package_metadata(cli: Any, flag: str) -> None:
    from importlib.metadata import version

    result = cli(flag)
    assert result.exit_code == 0 and result.stdout.strip() == f"ductape {version('ductape')}"


def test_show_v_is_the_definition_version_not_the_program_version(flow: Any, cli: Any) -> None:
    cli("define")
    result = cli("show", "flow", "-v", "zzz")
    assert result.exit_code == 2 and "has no version 'zzz'" in result.stderr


def test_help_lists_version_and_completion(cli: Any) -> None:
    out = cli("--help").stdout
    for option in ("--version", "-V", "--install-completion", "--show-completion"):
        assert option in out, option


# -- item 8: completion of tags and run ids from the store -----------------------------------


def _complete(project: Any, line: str) -> str:
    import subprocess

    from tests.conftest import ductape_cmd, ductape_subprocess_env

    env = {
        **ductape_subprocess_env(project.root),
        "_DUCTAPE_COMPLETE": "complete_bash",
        "COMP_WORDS": line,
        "COMP_CWORD": str(len(line.split()) - (0 if line.endswith(" ") else 1)),
    }
    done = subprocess.run(
        ductape_cmd(), env=env, capture_output=True, text=True, timeout=120, cwd=project.root
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_completion_offers_workflow_tags_and_recent_run_ids(flow: Any, cli: Any) -> None:
    run_id = start(cli, {})
    assert _complete(flow, "ductape run fl").split() == ["flow"]
    assert run_id in _complete(flow, f"ductape status {run_id[:5]}").split()
    assert run_id in _complete(flow, "ductape compare ").split()


def test_completion_outside_a_project_offers_nothing_and_creates_nothing(tmp_path: Any) -> None:
    import subprocess

    from tests.conftest import ductape_cmd, ductape_subprocess_env

    env = {
        **ductape_subprocess_env(tmp_path),
        "_DUCTAPE_COMPLETE": "complete_bash",
        "COMP_WORDS": "ductape status wf",
        "COMP_CWORD": "2",
    }
    env.pop("DUCTAPE_PROJECT")
    done = subprocess.run(
        ductape_cmd(), env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0 and done.stdout.strip() == "" and done.stderr == ""
    assert list(tmp_path.iterdir()) == []


# -- item 9: unknown tags say "did you mean" ---------------------------------------------------


def test_unknown_tag_is_one_line_with_the_closest_tags(flow: Any, cli: Any) -> None:
    flow.write(
        "others",
        "from ductape_cli import workflow\n"
        + "".join(
            f"\n\n@workflow({name!r})\nasync def w{i}(ctx):\n    return 1\n"
            for i, name in enumerate(["fan-out", "flow-control", "billing", "shipping", "refunds"])
        ),
    )
    result = cli("run", "flw")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown workflow 'flw'; did you mean flow" in lines[0]
    assert "billing" not in lines[0] and "refunds" not in lines[0]
    assert not flow.store.exists()
    far = cli("run", "zzzzzz").stderr
    assert "unknown workflow 'zzzzzz'" in far and "6 workflows" in far and "billing" not in far
    assert "did you mean flow" in cli("dispatch", "flw", "--in", "1h").stderr


# -- item 10: outside a project -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["workflows"], ["schedules", "list"], ["list"], ["status", "wf_x"], ["define"], ["run", "x"]],
)
def test_outside_a_project_commands_say_so_and_create_nothing(
    cli: Any, tmp_path: Any, monkeypatch: Any, args: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DUCTAPE_PROJECT", raising=False)
    monkeypatch.delenv("DUCTAPE_STORE", raising=False)
    result = cli(*args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not in a ductape project" in lines[0] and "ductape init" in lines[0]
    assert list(tmp_path.iterdir()) == []


# -- item 11: history --type and cron fields ---------------------------------------------------


def test_history_with_an_unknown_type_lists_the_valid_ones(flow: Any, cli: Any) -> None:
    run_id = start(cli, {})
    result = cli("history", run_id, "--type", "bogus")
    assert result.exit_code == 2
    assert "unknown event type 'bogus'" in result.stderr and "step_completed" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("61 * * * *", "minute 61 is out of range 0-59"),
        ("0 24 * * *", "hour 24 is out of range 0-23"),
        ("0 0 32 * *", "day of month 32 is out of range 1-31"),
        ("0 0 * 13 *", "month 13 is out of range 1-12"),
        ("0 0 * * 9", "day of week 9 is out of range 0-7"),
        ("0 0 * *", "expected 5 fields"),
        ("*/0 * * * *", "minute step '0' must be a positive number"),
    ],
)
def test_a_bad_cron_names_the_field_and_its_range(
    flow: Any, cli: Any, cron: str, message: str
) -> None:
    result = cli("dispatch", "flow", "--cron", cron)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert cli("schedules", "list", "--json").json() == []


# -- item 12: input must be an object unless input_model says otherwise -----------------------


@pytest.mark.parametrize("payload", ["[1, 2]", '"text"', "3", "null", "true"])
def test_input_that_is_not_an_object_is_refused(flow: Any, cli: Any, payload: str) -> None:
    result = cli("run", "flow", "--input", payload)
    assert result.exit_code == 2 and "must be a JSON object" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert cli("list", "--json").json() == []


def test_an_input_model_may_accept_other_json(project: Any, cli: Any) -> None:
    project.write(
        "listy",
        """
        from pydantic import RootModel

        from ductape_cli import workflow


        class Numbers(RootModel[list[int]]):
            pass


        @workflow("listy", input_model=Numbers)
        async def listy(ctx):
            return {"sum": sum(ctx.input)}
    """,
    )
    result = cli("run", "listy", "--input", "[1, 2]", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["output"] == {"sum": 3}


# -- item 13: a step that is never awaited --------------------------------------------------------

FORGOTTEN = """
from pathlib import Path

from ductape_cli import workflow


def charge():
    Path("charged").write_text("yes")
    return {"id": "ch_1"}


@workflow("pay", rollback_strategy="none")
async def pay(ctx):
    await ctx.step("validate", lambda: {"ok": True})
    ctx.step("charge", charge)
    return {"done": True}
"""


def test_a_step_never_awaited_is_a_define_warning_and_fails_the_run(project: Any, cli: Any) -> None:
    project.write("pay", FORGOTTEN)
    defined = cli("define")
    assert defined.exit_code == 0
    assert "step 'charge' at workflows/pay.py:15 is never awaited" in defined.stdout
    run = cli("run", "pay", "--json")
    assert run.exit_code == 1
    error = run.json()["error"]
    assert (
        error["code"] == "STEP_NOT_AWAITED"
        and error["step"] == "charge"
        and "pay.py:15" in error["message"]
    )
    assert not (project.root / "charged").exists()


# -- item 14: a workflow the recorder cannot follow: one notice ---------------------------------


def test_run_of_an_unrecordable_workflow_prints_one_consistent_notice(
    project: Any, cli: Any
) -> None:
    project.write(
        "odd",
        """
        from ductape_cli import workflow


        @workflow("odd")
        async def odd(ctx):
            if ctx.input.count > 3:
                await ctx.step("big", lambda: 1)
            return {"ok": True}
    """,
    )
    result = cli("run", "odd", "--input", '{"count": 5}')
    assert result.exit_code == 0, result.stderr
    notices = result.stderr.strip().splitlines()
    assert len(notices) == 1, notices
    assert "could not record all of odd" in notices[0] and "$Input{count}" in notices[0]
    assert (
        "running it with the 0 steps recorded before that" in notices[0]
        and "compiled odd" not in notices[0]
    )


def test_run_of_a_recordable_workflow_says_how_many_steps_it_compiled(flow: Any, cli: Any) -> None:
    notices = cli("run", "flow").stderr.strip().splitlines()
    assert (
        len(notices) == 1
        and notices[0].startswith("ductape: compiled flow → version")
        and "(3 steps)" in notices[0]
    )


# -- item 15: the seed's option names and single-dict form ----------------------------------------

SEED_FORM = """
from ductape_cli import define, workflow


async def handler(ctx):
    check = await ctx.step("check", lambda: {"ok": ctx.input.size > 1})
    if not check["ok"]:
        return {"small": True}
    await ctx.step("big", lambda: 1)
    return {"small": False}


define({
    "tag": "seed-dict",
    "handler": handler,
    "options": {"branchOverrides": {"check": {"ok": True}}, "recordInput": {"size": 2},
                "rollbackStrategy": "none", "maxEvents": 500, "timeout": 300000},
})


@workflow("seed-camel", branchOverrides={"check": {"ok": True}}, recordInput={"size": 2}, rollbackStrategy="to_checkpoint")
async def camel(ctx):
    return await handler(ctx)
"""


def test_the_seeds_option_names_and_dict_form_are_accepted(project: Any, cli: Any) -> None:
    project.write("seed", SEED_FORM)
    assert cli("define").exit_code == 0
    for tag, strategy in (("seed-dict", "none"), ("seed-camel", "to_checkpoint")):
        shown = cli("show", tag, "--json").json()
        options = shown["schema"]["options"]
        assert options["rollback_strategy"] == strategy
        big = next(s for s in shown["schema"]["steps"] if s["tag"] == "big")
        assert big["condition"] == "$Step{check}{ok} == true"  # the branch override was used
    assert cli("show", "seed-dict", "--json").json()["schema"]["options"]["max_events"] == 500
    assert cli("run", "seed-dict", "--input", '{"size": 5}', "--json").json()["output"] == {
        "small": False
    }


def test_an_unknown_option_name_is_a_definition_error(project: Any, cli: Any) -> None:
    project.write(
        "typo",
        """
        from ductape_cli import workflow


        @workflow("typo", branchOverides={})
        async def typo(ctx):
            return 1
    """,
    )
    result = cli("define")
    assert (
        result.exit_code == 2
        and "unknown option 'branchOverides'; did you mean branch_overrides?" in result.stderr
    )


# -- item 16: per-workflow envs and product ------------------------------------------------------

ENVS = """
from ductape_cli import workflow


@workflow("billing", envs=["dev", {"slug": "stg", "active": False}], product="payments-suite")
async def billing(ctx):
    return {"product": ctx.product, "env": ctx.env}
"""


def test_an_inactive_workflow_env_is_refused_and_product_is_stored_and_shown(
    project: Any, cli: Any
) -> None:
    (project.root / "ductape.toml").write_text(
        (project.root / "ductape.toml").read_text() + "\n[envs.stg]\nactive = true\n",
        encoding="utf-8",
    )
    project.write("billing", ENVS)
    refused = cli("run", "billing", "--env", "stg")
    assert refused.exit_code == 2 and "inactive in env 'stg'" in refused.stderr
    assert cli("list", "--json").json() == []
    ran = cli("run", "billing", "--json").json()
    assert ran["output"] == {"product": "payments-suite", "env": "dev"}
    shown = cli("show", "billing")
    assert "product: payments-suite" in shown.stdout
    assert "stg (inactive)" in shown.stdout
    assert (
        cli("show", "billing", "--json").json()["schema"]["options"]["product"] == "payments-suite"
    )
