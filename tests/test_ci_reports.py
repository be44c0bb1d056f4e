"""CI output: JUnit XML (checked against the schema's required elements), GitHub workflow commands
(checked verbatim), the Markdown job summary, and `ductape wait`."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ORDER = """
    from ductape_cli import workflow

    def refund(charge):
        return None

    def release(slot):
        raise RuntimeError("warehouse offline")

    @workflow("order", rollback_strategy="reverse_all")
    async def order(ctx):
        await ctx.step("validate", lambda: {"ok": True})
        await ctx.step("gift-wrap", lambda: "wrapped", condition="$Input{gift} == true")
        await ctx.step("reserve", lambda: {"slot": 1}, rollback=release)
        await ctx.step("charge", lambda: {"id": "ch_1"}, rollback=refund)
        if ctx.input.fail:
            await ctx.step("ship", lambda: 1 / 0)
        if ctx.input.wait:
            await ctx.wait_for_signal("go")
        if ctx.input.crash:
            raise ValueError("handler broke")
        return {"done": True}
"""

# The JUnit schema (Ant's junit.xsd, which Jenkins, GitLab and GitHub's reporters accept, plus
# `skipped`): what each element must carry.
SUITE_ATTRS = {
    "name",
    "tests",
    "failures",
    "errors",
    "time",
    "timestamp",
    "hostname",
    "id",
    "package",
    "skipped",
}
SUITE_CHILDREN = {"properties", "system-out", "system-err"}
CASE_ATTRS = {"name", "classname", "time"}
PROBLEM_ATTRS = {"message", "type"}


def line_of(text: str) -> str:
    """The line number of `text` in workflows/order.py."""
    return str(next(i for i, line in enumerate(ORDER.splitlines(), 1) if text in line))


def check_schema(root: ET.Element) -> None:
    assert root.tag == "testsuites"
    for suite in root.iter("testsuite"):
        assert SUITE_ATTRS <= set(suite.attrib), suite.attrib
        children = [c.tag for c in suite]
        assert SUITE_CHILDREN <= set(children)
        assert children.index("properties") == 0  # properties first, system-out/err last
        assert children[-2:] == ["system-out", "system-err"]
        for prop in suite.find("properties") or []:
            assert {"name", "value"} <= set(prop.attrib)
        cases = suite.findall("testcase")
        assert int(suite.get("tests") or 0) == len(cases)
        assert int(suite.get("failures") or 0) == sum(len(c.findall("failure")) for c in cases)
        assert int(suite.get("errors") or 0) == sum(len(c.findall("error")) for c in cases)
        assert int(suite.get("skipped") or 0) == sum(len(c.findall("skipped")) for c in cases)
        float(suite.get("time") or "x")
        for case in cases:
            assert CASE_ATTRS <= set(case.attrib), case.attrib
            float(case.get("time") or "x")
            for problem in [*case.findall("failure"), *case.findall("error")]:
                assert PROBLEM_ATTRS <= set(problem.attrib)


@pytest.fixture
def order(project, monkeypatch):
    project.write("order", ORDER)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.setenv("GITHUB_WORKSPACE", str(project.root))
    return project


def cases(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    check_schema(root)
    return {c.get("name") or "": c for c in root.iter("testcase")}


def test_junit_for_a_failed_run_with_compensations(order, cli, tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    result = cli("run", "order", "--input", '{"fail": true}', "--junit", str(report), "--json")
    assert result.exit_code == 1
    run_id = result.json()["workflow_id"]
    root = ET.parse(report).getroot()
    check_schema(root)
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == f"order {run_id}"
    assert {p.get("name"): p.get("value") for p in suite.find("properties") or []}[
        "workflow_id"
    ] == run_id
    found = cases(report)
    assert list(found) == [
        "validate",
        "gift-wrap",
        "reserve",
        "charge",
        "ship",
        "compensate charge",
        "compensate reserve",
    ]
    assert found["validate"].find("failure") is None and found["validate"].find("skipped") is None
    skipped = found["gift-wrap"].find("skipped")
    assert skipped is not None and "$Input{gift} == true" in (skipped.get("message") or "")
    failure = found["ship"].find("failure")
    assert failure is not None and failure.get("message") == "division by zero"
    assert failure.get("type") == "ZeroDivisionError"
    line = line_of('ctx.step("ship"')
    assert found["ship"].get("file") == "workflows/order.py" and found["ship"].get("line") == line
    assert (failure.text or "").startswith(f"workflows/order.py:{line}: step ship failed")
    assert found["compensate charge"].get("classname") == "order.compensation"
    assert found["compensate charge"].find("failure") is None
    broken = found["compensate reserve"].find("failure")
    assert broken is not None and broken.get("message") == "warehouse offline"
    assert (
        suite.get("tests"),
        suite.get("failures"),
        suite.get("skipped"),
        suite.get("errors"),
    ) == ("7", "2", "1", "0")


@pytest.mark.parametrize(
    ("payload", "exit_code", "expect"),
    [
        ("{}", 0, None),
        ('{"crash": true}', 1, ("error", "HANDLER_ERROR")),
        ('{"wait": true}', 5, ("skipped", None)),
    ],
)
def test_junit_run_level_outcomes(
    order, cli, tmp_path: Path, payload: str, exit_code: int, expect
) -> None:
    report = tmp_path / "out.xml"
    result = cli("run", "order", "--input", payload, "--junit", str(report), "--json")
    assert result.exit_code == exit_code
    found = cases(report)
    run_case = found.get(f"run {result.json()['workflow_id']}")
    if expect is None:
        assert run_case is None
        return
    assert run_case is not None
    element = run_case.find(expect[0])
    assert element is not None
    if expect[1]:
        assert element.get("type") == expect[1]
    else:
        assert "waiting for signal go" in (element.get("message") or "")


def test_junit_from_signal_resume_and_replay(order, cli, tmp_path: Path) -> None:
    run_id = cli("run", "order", "--input", '{"wait": true}', "--json").json()["workflow_id"]
    signalled = cli("signal", run_id, "go", "--junit", str(tmp_path / "s.xml"), "--json")
    assert signalled.exit_code == 0
    assert f"run {run_id}" not in cases(tmp_path / "s.xml")
    replayed = cli("replay", run_id, "--junit", str(tmp_path / "r.xml"), "--json")
    assert replayed.exit_code == 5  # the replay waits for its own signal
    assert f"run {replayed.json()['workflow_id']}" in cases(tmp_path / "r.xml")
    failed = cli("run", "order", "--input", '{"fail": true}', "--json").json()["workflow_id"]
    # The run failed because a compensation failed: resume retries that compensation (still failing).
    resumed = cli("resume", failed, "--junit", str(tmp_path / "m.xml"), "--json")
    assert resumed.exit_code == 1
    broken = cases(tmp_path / "m.xml")["compensate reserve"].find("failure")
    assert broken is not None and broken.get("message") == "warehouse offline"
    restarted = cli("run", "order", "--input", "{}", "--json").json()["workflow_id"]
    refused = cli("resume", restarted, "--junit", str(tmp_path / "c.xml"), "--json")
    assert refused.exit_code == 2  # a completed run cannot be resumed: no file is written
    assert not (tmp_path / "c.xml").exists()


def test_junit_bad_path_is_refused_before_anything_runs(order, cli, tmp_path: Path) -> None:
    result = cli("run", "order", "--junit", str(tmp_path / "missing" / "x.xml"))
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"ductape: --junit {tmp_path / 'missing' / 'x.xml'}: folder {tmp_path / 'missing'} does not exist"
    )
    assert not order.store.exists()


def test_github_annotations_verbatim(order, cli, monkeypatch, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = cli("run", "order", "--input", '{"fail": true}', "--json")
    assert result.exit_code == 1
    run_id = result.json()["workflow_id"]  # stdout stays pure JSON
    line, release_line = line_of('ctx.step("ship"'), line_of('ctx.step("reserve"')
    commands = [text for text in result.stderr.splitlines() if text.startswith("::")]
    assert commands == [
        f"::error file=workflows/order.py,line={line},title=ductape%3A ship failed (order {run_id})::division by zero",
        f"::error file=workflows/order.py,line={release_line},title=ductape%3A compensation of reserve failed (order {run_id})::warehouse offline",
    ]
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("### ❌ order: failed\n")
    assert "| ship | ❌ failed: division by zero |" in text
    assert "| gift-wrap | ⏭️ skipped ($Input{gift} == true) |" in text
    assert "**Compensations**" in text and "| charge | ↺ compensated |" in text
    assert "| reserve | ❌ failed: warehouse offline |" in text


def test_annotations_off_outside_github_and_overridable(order, cli, monkeypatch) -> None:
    quiet = cli("run", "order", "--input", '{"fail": true}', "--json")
    assert "::error" not in quiet.stderr
    forced = cli("run", "order", "--input", '{"fail": true}', "--json", "--annotations")
    assert "::error file=workflows/order.py" in forced.stderr
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    off = cli("run", "order", "--input", '{"fail": true}', "--json", "--no-annotations")
    assert "::error" not in off.stderr


def test_messages_are_escaped_as_the_runner_expects() -> None:
    from ductape_cli.render.github import command

    assert command("error", "50% done\r\nnext", file="a,b.py", line="3", title="x: y") == (
        "::error file=a%2Cb.py,line=3,title=x%3A y::50%25 done%0D%0Anext"
    )
    assert command("warning", "plain") == "::warning::plain"


def test_define_check_problems_as_annotations(project, cli, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(project.root))
    project.write(
        "hello",
        "from ductape_cli import workflow\n\n@workflow('hello')\ndef hello(ctx):\n    return ctx.step('a', lambda: 1)\n",
    )
    result = cli("define", "--check")
    assert result.exit_code == 1
    assert (
        "::error file=workflows/hello.py,title=ductape%3A hello is missing::workflow hello has no stored definition; run `ductape define` and commit the result"
        in result.stderr.splitlines()
    ), result.stderr
    project.write("broken", "from ductape_cli import workflow\n\nx = = 1\n")
    broken = cli("define", "--check")
    commands = [
        text
        for text in broken.stderr.splitlines()
        if text.startswith("::error file=workflows/broken.py")
    ]
    assert len(commands) == 1 and ",line=3," in commands[0], broken.stderr
    assert "::error" not in cli("define", "--check", "--no-annotations").stderr


def test_wait_blocks_until_the_run_ends_and_exits_by_status(order, cli) -> None:
    run_id = cli("run", "order", "--input", '{"wait": true}', "--json").json()["workflow_id"]
    timed_out = cli("wait", run_id, "--timeout", "300ms", "--json")
    assert timed_out.exit_code == 5 and timed_out.json()["timed_out"] is True
    assert cli("signal", run_id, "go", "--no-wait", "--json").exit_code == 5
    import threading

    engine = order.engine()
    driver = threading.Thread(target=lambda: engine.drive(run_id))
    driver.start()
    done = cli(
        "wait", run_id, "--timeout", "30s", "--json", "--junit", str(order.root / "wait.xml")
    )
    driver.join()
    assert done.exit_code == 0 and done.json()["status"] == "completed"
    assert list(cases(order.root / "wait.xml")) == ["validate", "gift-wrap", "reserve", "charge"]
    failed = cli("run", "order", "--input", '{"fail": true}', "--json").json()["workflow_id"]
    assert cli("wait", failed).exit_code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("wait", "wf_nope"), "no run with id 'wf_nope'"),
        (("wait", "ID", "--timeout", "soon"), "invalid --timeout 'soon'"),
    ],
)
def test_wait_bad_input(order, cli, args, message) -> None:
    if "ID" in args:
        run_id = cli("run", "order", "--json").json()["workflow_id"]
        args = tuple(run_id if a == "ID" else a for a in args)
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


FAMILY = """
    from ductape_cli import workflow

    @workflow("label")
    async def label(ctx):
        await ctx.step("print", lambda: 1 / 0 if ctx.input.jam else "ok")
        return "printed"

    @workflow("parcel")
    async def parcel(ctx):
        await ctx.step("pack", lambda: "packed")
        return await ctx.workflow("label-" + ctx.workflow_id, "label", {"jam": ctx.input.jam})
"""


def test_children_are_testsuites_of_their_own(project, cli, tmp_path: Path) -> None:
    project.write("family", FAMILY)
    result = cli(
        "run", "parcel", "--input", '{"jam": true}', "--junit", str(tmp_path / "f.xml"), "--json"
    )
    assert result.exit_code == 1
    run_id = result.json()["workflow_id"]
    root = ET.parse(tmp_path / "f.xml").getroot()
    check_schema(root)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [f"parcel {run_id}", f"label label-{run_id}"]
    parent_cases = {c.get("name"): c for c in suites[0].iter("testcase")}
    assert list(parent_cases) == ["pack", f"child label-{run_id}"]
    assert parent_cases[f"child label-{run_id}"].find("failure") is not None
    child_failure = suites[1].find("testcase/failure")
    assert child_failure is not None and child_failure.get("message") == "division by zero"
    assert root.get("tests") == "3" and root.get("failures") == "2"


def test_a_failure_outside_any_step_is_one_annotation_for_the_run(order, cli) -> None:
    result = cli("run", "order", "--input", '{"crash": true}', "--json", "--annotations")
    run_id = result.json()["workflow_id"]
    commands = [text for text in result.stderr.splitlines() if text.startswith("::")]
    reserve = line_of('ctx.step("reserve"')
    assert commands == [
        f"::error file=workflows/order.py,line={reserve},title=ductape%3A compensation of reserve failed (order {run_id})::warehouse offline",
        f"::error title=ductape%3A order {run_id} failed::ValueError: handler broke",
    ]
