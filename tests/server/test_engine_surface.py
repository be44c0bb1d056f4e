"""The engine and store capabilities `serve` is built on: metadata, retries, the change feed, conflicts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Project
from tests.server.conftest import WORKFLOWS


@pytest.fixture
def engine(project: Project) -> Any:
    project.write("flows", WORKFLOWS)
    eng = project.engine()
    yield eng
    eng.close()


def test_metadata_is_kept_and_shown_by_status_and_list(engine: Any, cli: Any) -> None:
    run, _ = engine.start("greet", {}, detach=True, metadata={"source": "frontend"})
    assert engine.get_run(run.id).metadata == {"source": "frontend"}
    assert cli("status", run.id, "--json").json()["metadata"] == {"source": "frontend"}
    assert cli("list", "--json").json()[0]["metadata"] == {"source": "frontend"}
    assert 'metadata: {"source": "frontend"}' in cli("status", run.id).stdout
    assert '{"source": "frontend"}' in cli("list").stdout
    assert engine.set_metadata(run.id, {"source": None, "by": "me"}) == {"by": "me"}


@pytest.mark.parametrize("bad", [["list"], {"x": object()}, {"blob": "x" * 17_000}])
def test_bad_metadata_is_refused_before_anything_is_written(engine: Any, bad: Any) -> None:
    from ductape_cli.errors import InvalidInput

    with pytest.raises(InvalidInput, match="metadata"):
        engine.start("greet", {}, detach=True, metadata=bad)
    assert engine.list_runs() == []


def test_retries_make_fresh_runs_until_used_up(engine: Any) -> None:
    from ductape_cli.engine.worker import Worker

    run, _ = engine.start("failing", {}, detach=True, retries=2, metadata={"m": 1})
    Worker(engine, poll_interval=0.05).run(once=True)
    ids = sorted(r.id for r in engine.list_runs(tag="failing"))
    assert ids == sorted([run.id, f"{run.id}-r2", f"{run.id}-r2-r1"])
    assert all(r.status == "failed" for r in engine.list_runs(tag="failing"))
    assert engine.get_run(f"{run.id}-r2").restarted_from == run.id
    assert engine.get_run(f"{run.id}-r2").metadata == {"m": 1}
    from ductape_cli.errors import InvalidInput

    with pytest.raises(InvalidInput, match="retries"):
        engine.start("failing", {}, detach=True, retries=-1)


def test_submit_refuses_a_reused_idempotency_key_with_other_input(engine: Any) -> None:
    from ductape_cli.errors import Conflict

    first, created = engine.submit("greet", {"name": "a"}, idempotency_key="k")
    again, created_again = engine.submit("greet", {"name": "a"}, idempotency_key="k")
    assert created and not created_again and again.id == first.id
    with pytest.raises(Conflict, match="idempotency key 'k'"):
        engine.submit("greet", {"name": "b"}, idempotency_key="k")
    with pytest.raises(Conflict, match="already exists"):
        engine.submit("greet", {}, workflow_id=first.id)


def test_the_feed_records_writers_in_other_engines_once_enabled(
    project: Project, engine: Any
) -> None:
    before, _ = engine.start("greet", {}, detach=True)
    assert engine.feed(0) == ([], 0)  # not served yet: nothing recorded
    engine.enable_feed()
    engine.enable_feed()  # idempotent
    position = engine.feed_position()
    other = project.engine()  # another writer (as another process would be)
    result = other.run("greet", {"name": "x"})
    other.close()
    events, cursor = engine.feed(position)
    assert cursor > position
    assert [e["type"] for e in events if e["type"] != "workflow_started"] == [
        "status_changed",
        "step_started",
        "step_completed",
        "step_started",
        "step_completed",
        "step_started",
        "step_completed",
        "status_changed",
        "completed",
    ]
    assert events[-1]["data"]["result"] == result["output"]
    assert {e["executionId"] for e in events} == {result["workflow_id"]}
    assert engine.feed(cursor) == ([], cursor)
    assert engine.feed(0, run_id=before.id) == ([], 0)  # written before the feed was on
    by_tag, _ = engine.feed(0, tag="approval")
    assert by_tag == []
