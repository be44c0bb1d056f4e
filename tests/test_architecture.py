"""Structural guarantees: one error hierarchy, one merge, one text table, one ctx contract."""

from __future__ import annotations

import pytest

from ductape_cli.components import errors as component_errors
from ductape_cli.errors import EXIT_FAILED, DuctapeError
from ductape_cli.mappings import deep_merge


@pytest.mark.parametrize(
    "cls", [component_errors.ComponentError, *component_errors.ERROR_CLASSES.values()]
)
def test_component_errors_are_ductape_errors_with_their_own_code_and_exit_1(cls) -> None:
    assert issubclass(cls, DuctapeError)
    error = cls("payments: 503")
    assert error.message == str(error) == "payments: 503"
    assert (
        error.exit_code == EXIT_FAILED and error.code.endswith("_ERROR") and error.code != "ERROR"
    )


def test_deep_merge_merges_nested_objects_and_copies_what_it_takes() -> None:
    top = {"customer": {"address": {"city": "Oslo"}}, "items": [1]}
    merged = deep_merge(
        {"customer": {"name": "Ada", "address": {"city": "Rome", "zip": "1"}}, "n": 1}, top
    )
    assert merged == {
        "customer": {"name": "Ada", "address": {"city": "Oslo", "zip": "1"}},
        "n": 1,
        "items": [1],
    }
    merged["items"].append(2)
    assert top["items"] == [1]


def test_one_module_holds_the_operation_and_progress_wording() -> None:
    import ductape_cli.definitions as definitions
    import ductape_cli.render.live as live
    from ductape_cli.render import operations

    assert definitions.describe_operation is operations.describe_operation
    assert live.progress_line is operations.progress_line
    from ductape_cli.models import EventType

    line = operations.progress_line(EventType.CHECKPOINT_CREATED, {"name": "paid"})
    assert line == "◆ " + operations.describe_operation({"kind": "checkpoint", "name": "paid"})


def _public(cls: type) -> dict[str, object]:
    names = {
        n
        for klass in cls.__mro__
        if klass is not object
        for n in vars(klass)
        if not n.startswith("_")
    }
    return {n: getattr(cls, n) for n in names}


def _parameters(member: object) -> list[tuple[str, object]] | None:
    import inspect

    target = member.fget if isinstance(member, property) else member
    if not callable(target):
        return None
    params = list(inspect.signature(target).parameters.values())
    if isinstance(member, property) or (params and params[0].name == "self"):
        params = params[1:]
    return [(p.name, p.kind) for p in params]


def test_the_engine_and_the_recorder_implement_the_same_ctx() -> None:
    """A method on one ctx and not the other means `define` and `run` disagree about a workflow."""
    from ductape_cli.ctx import Context as Contract
    from ductape_cli.engine.context import Context as EngineContext
    from ductape_cli.recording import RecordingContext

    contract = {n for n in _public(Contract) if n not in {"register", "mro"}}
    engine = set(_public(EngineContext)) | {
        "workflow_id",
        "workflow_tag",
        "env",
        "product",
        "input",
        "context",
        "parent_id",
        "is_replay",
        "replayed_from",
        "replay_reason",
        "restarted_from",
        "log",
        "transform",
    }
    recorder = set(_public(RecordingContext)) | {
        "workflow_id",
        "workflow_tag",
        "env",
        "product",
        "input",
        "context",
        "parent_id",
        "is_replay",
        "replayed_from",
        "replay_reason",
        "restarted_from",
        "log",
        "transform",
        "is_restored",
        "restored_checkpoint",
        "checkpoint_name",
        "checkpoint_data",
        "current_step",
        "state",
    }
    engine_only = {"never_awaited"}  # the engine's own bookkeeping, not part of ctx
    assert engine - engine_only == contract, "engine ctx vs contract"
    assert recorder == contract, "recording ctx vs contract"


def test_ctx_methods_take_the_same_parameters_on_both_sides() -> None:
    from ductape_cli.engine.context import Context as EngineContext
    from ductape_cli.recording import RecordingContext

    engine, recorder = _public(EngineContext), _public(RecordingContext)
    for name in sorted(set(engine) & set(recorder)):
        assert _parameters(engine[name]) == _parameters(recorder[name]), name


def test_instances_of_both_satisfy_the_runtime_protocol(project) -> None:
    from ductape_cli import Context
    from ductape_cli.recording import Recorder, RecordingContext

    recorder = RecordingContext(Recorder("t", {}, {}, True), {}, "t")
    assert isinstance(recorder, Context)
    project.write(
        "seen",
        """
        from ductape_cli import Context, workflow

        SEEN = []

        @workflow("seen")
        async def seen(ctx: Context):
            SEEN.append(isinstance(ctx, Context))
    """,
    )
    engine = project.engine()
    engine.run("seen", {})
    seen = engine.definition("seen").handler.__globals__["SEEN"]
    assert seen and all(seen)  # recorded by `define`, then run: both ctx objects are a Context


@pytest.mark.parametrize(
    ("call", "values", "message"),
    [
        (
            "ctx.parallel([ctx.step('a', lambda: 1)], concurrency={v})",
            [0],
            "ctx.parallel concurrency must be at least 1",
        ),
        ("ctx.step({v}, lambda: 1)", [""], "a step tag must be a non-empty string, got ''"),
        ("ctx.checkpoint({v})", [""], "a checkpoint needs a non-empty name, got ''"),
        ("ctx.step('a', lambda: {v})", [1, 2], "duplicate step tag 'a'"),
    ],
)
def test_define_and_run_refuse_the_same_calls_with_the_same_words(
    project, cli, call, values, message
) -> None:
    """The recorder sees the literal call; a run meets the same values only from its input."""
    literal = "; ".join("await " + call.format(v=repr(v)) for v in values)
    project.write(
        "bad",
        f"""
        from ductape_cli import workflow

        @workflow("bad")
        async def bad(ctx):
            {literal}
    """,
    )
    defined = cli("define")
    assert defined.exit_code != 0 and message in defined.stderr + defined.stdout
    project.write(
        "bad",
        f"""
        from ductape_cli import workflow

        @workflow("bad")
        async def bad(ctx):
            for v in ctx.input["values"]:
                await {call.format(v="v")}
    """,
    )
    result = project.engine().run("bad", {"values": values})
    assert result["status"] == "failed" and message in result["error"]["message"]


def test_ctx_step_is_generic_in_what_the_function_returns(tmp_path) -> None:
    from mypy import api

    sample = tmp_path / "typed_flow.py"
    sample.write_text(
        "from ductape_cli import Context\n"
        "async def charge() -> int:\n    return 1\n"
        "def label() -> str:\n    return 'x'\n"
        "async def flow(ctx: Context) -> None:\n"
        "    n = await ctx.step('charge', charge)\n"
        "    s = await ctx.step('label', label)\n"
        "    reveal_type(n)\n    reveal_type(s)\n",
        encoding="utf-8",
    )
    out, _, _ = api.run(
        [str(sample), "--no-incremental", "--follow-imports=silent", "--ignore-missing-imports"]
    )
    assert 'Revealed type is "int"' in out and 'Revealed type is "str"' in out, out


def test_the_package_is_marked_typed() -> None:
    import tomllib
    from pathlib import Path

    import ductape_cli

    root = Path(ductape_cli.__file__).parent
    assert (root / "py.typed").is_file()
    project = tomllib.loads((root.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["ductape_cli"]


def test_observers_and_listeners_hear_one_vocabulary(project) -> None:
    """Every kind an observer or engine listener is called with is an EventType or a Lifecycle member."""
    from ductape_cli.models import EventType, Lifecycle

    project.write(
        "tour",
        """
        from ductape_cli import workflow

        def undo(*_):
            return None

        def boom():
            raise RuntimeError("no")

        @workflow("tour")
        async def tour(ctx):
            ctx.log.info("hello")
            await ctx.step("a", lambda: 1, rollback=undo)
            await ctx.checkpoint("half")
            await ctx.sleep("1ms")
            await ctx.step("b", boom, retries=1)
    """,
    )
    engine = project.engine()
    heard: list[object] = []
    engine.listeners.append(lambda execution, kind, data: heard.append(kind))
    seen: list[object] = []
    result = engine.run("tour", {}, observer=lambda kind, data: seen.append(kind))
    assert result["status"] == "rolled_back"
    assert seen and heard and all(isinstance(k, (EventType, Lifecycle)) for k in [*seen, *heard])
    assert {
        EventType.CHECKPOINT_CREATED,
        EventType.SLEEP_STARTED,
        EventType.STEP_ROLLED_BACK,
        EventType.STEP_RETRIED,
        EventType.LOG,
    } <= set(seen)
    assert {Lifecycle.RUN_CREATED, Lifecycle.EXECUTION_STARTED, Lifecycle.FINISHED} <= set(heard)


def test_a_run_error_keeps_the_stored_shape_and_round_trips() -> None:
    from ductape_cli.models import ErrorCode, RunError

    error = RunError("workflow timed out after 5 ms", ErrorCode.TIMEOUT, "charge")
    assert error.to_dict() == {
        "message": "workflow timed out after 5 ms",
        "step": "charge",
        "code": "TIMEOUT",
    }
    assert list(error.to_dict()) == ["message", "step", "code"]
    stored = {"message": "m", "step": None, "code": "X", "type": "ValueError"}
    assert RunError.from_dict(stored).to_dict() == stored


def test_commands_reach_the_store_and_rich_only_through_the_engine_and_render() -> None:
    """cli/ parses, calls one engine method and hands the result to render/: no store, no rich, no SQL."""
    import re
    from pathlib import Path

    import ductape_cli

    forbidden = re.compile(
        r"\.store\b|config\.raw|sqlite3|^\s*(from|import) rich\b|\bSELECT\b|\bINSERT\b", re.M
    )
    offenders = {
        path.name: sorted(
            {m.group(0).strip() for m in forbidden.finditer(path.read_text(encoding="utf-8"))}
        )
        for path in (Path(ductape_cli.__file__).parent / "cli").glob("*.py")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_engine_modules_talk_to_each_other_without_type_ignores_or_private_calls() -> None:
    """The runners are typed against the journal core; the engine uses an execution's public methods."""
    import re
    from pathlib import Path

    import ductape_cli

    engine_dir = Path(ductape_cli.__file__).parent / "engine"
    ignores = {
        p.name for p in engine_dir.glob("*.py") if "type: ignore" in p.read_text(encoding="utf-8")
    }
    assert ignores == set()
    private = re.findall(
        r"execution\._[a-z]\w*\(", (engine_dir / "engine.py").read_text(encoding="utf-8")
    )
    assert private == []


def test_the_execution_composes_its_runners_instead_of_inheriting_them() -> None:
    """`Execution` is a plain class holding a `Journal` and one runner per kind of operation."""
    from ductape_cli.engine.execution import Execution

    assert Execution.__bases__ == (object,)
    assert not [name for name in dir(Execution) if name in ("next_op", "commit", "run_step")]


def test_components_and_observers_read_a_run_only_through_its_view() -> None:
    """components/ and observe/ never reach into an execution's run row, store, clock or journal."""
    import re
    from pathlib import Path

    import ductape_cli

    root = Path(ductape_cli.__file__).parent
    offenders = {
        str(path.relative_to(root)): found
        for folder in ("components", "observe")
        for path in (root / folder).rglob("*.py")
        if (
            found := re.findall(
                r"execution\.(?:run|store|clock|journal)\b", path.read_text(encoding="utf-8")
            )
        )
    }
    assert offenders == {}


def test_a_listener_reads_the_run_through_a_read_only_view(project) -> None:
    """What a listener gets: the run's id, tag and env, and the journal rows of its steps."""
    from ductape_cli.engine.journal import RunView
    from ductape_cli.models import EventType, StepStatus

    project.write(
        "viewed",
        """
        from ductape_cli import workflow

        def boom():
            raise RuntimeError("no")

        @workflow("viewed")
        async def viewed(ctx):
            await ctx.step("a", lambda: 1)
            await ctx.step("b", boom, allow_fail=True)
            return "done"
    """,
    )
    engine = project.engine()
    seen: dict[str, object] = {}

    def listener(view, kind, data) -> None:
        if kind == EventType.STEP_FAILED:
            assert isinstance(view, RunView)
            record = view.step_record("b")
            seen.update(
                run_id=view.run_id,
                tag=view.tag,
                env=view.env,
                a=view.recorded("a"),
                missing=view.recorded("zzz"),
                b=record.status if record else None,
            )

    engine.listeners.append(listener)
    result = engine.run("viewed", {})
    assert result["status"] == "completed"
    assert seen == {
        "run_id": result["workflow_id"],
        "tag": "viewed",
        "env": engine.config.default_env,
        "a": True,
        "missing": False,
        "b": StepStatus.SKIPPED,
    }
    assert not hasattr(RunView, "records") and not hasattr(RunView, "commit")


def test_the_step_runner_asks_the_engine_for_the_function_through_one_seam(project) -> None:
    """`Engine.step_function` is the documented seam the testing kit's mock_step overrides."""
    from ductape_cli.engine.engine import Engine

    project.write(
        "seam",
        """
        from ductape_cli import workflow

        @workflow("seam")
        async def seam(ctx):
            return await ctx.step("real", lambda: "real")
    """,
    )

    class Swapping(Engine):
        def step_function(self, tag, fn):
            return (lambda: "swapped") if tag == "real" else fn

    from ductape_cli.config import load_config

    assert not hasattr(project.engine(), "step_overrides")
    assert Swapping(load_config(project.root)).run("seam", {})["output"] == "swapped"
    assert project.engine().run("seam", {})["output"] == "real"


def test_the_architecture_page_names_modules_that_exist() -> None:
    """docs/architecture.md stays true: every `path.py` and `Name` in backticks it cites exists."""
    import re
    from pathlib import Path

    import ductape_cli

    root = Path(ductape_cli.__file__).parent
    text = (root.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for cited in set(re.findall(r"`([a-z_/]+\.py)", text)):
        candidates = [
            root / cited,
            root.parent / cited,
            root / "engine" / cited,
            *root.glob(f"*/{cited}"),
        ]
        assert any(p.exists() for p in candidates), cited
    from ductape_cli import ctx, models
    from ductape_cli.engine import engine, journal

    for owner, name in [
        (journal, "Journal"),
        (journal, "RunView"),
        (models, "Lifecycle"),
        (models, "StreamType"),
        (models, "RunError"),
        (ctx, "Context"),
        (engine.Engine, "step_function"),
        (engine.Engine, "components_for"),
    ]:
        assert hasattr(owner, name), name
