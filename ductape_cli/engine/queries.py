"""Queries: a workflow's read-only questions about a run, answered from the store."""

from __future__ import annotations

import copy
import inspect
from types import MappingProxyType
from typing import Any

from ductape_cli.definition import WorkflowDefinition
from ductape_cli.engine.context import wrap
from ductape_cli.engine.results import completed_step_tags
from ductape_cli.errors import InvalidInput, QueryFailed
from ductape_cli.models import OpKind, Run, StepRecord, StepStatus


class QueryContext:
    """What a query handler sees: copies of the run's input, state and steps. Nothing here writes."""

    def __init__(self, run: Run, journal: dict[int, StepRecord]) -> None:
        self.workflow_id = run.id
        self.workflow_tag = run.tag
        self.env = run.env
        self.status = str(run.status)
        self.input = wrap(copy.deepcopy(run.input))
        self.state = MappingProxyType(copy.deepcopy(run.state or {}))
        steps = {
            r.tag: copy.deepcopy(r.output)
            for r in journal.values()
            if r.kind == OpKind.STEP and r.status != StepStatus.FAILED
        }
        self.steps = MappingProxyType(steps)
        self.completed_steps = completed_step_tags(journal)
        self.current_step = run.current_step
        if self.current_step is None and run.waiting:
            self.current_step = None
        self.output = copy.deepcopy(run.output)

    def get_state(self, key: str, default: Any = None) -> Any:
        return self.state.get(key, default)


def run_query(run: Run, wf: WorkflowDefinition, journal: dict[int, StepRecord], name: str) -> Any:
    handler = wf.queries.get(name)
    if handler is None:
        known = ", ".join(sorted(wf.queries)) or "none"
        raise InvalidInput(f"workflow {wf.tag} has no query {name!r} (queries: {known})")
    try:
        result = handler(QueryContext(run, journal))
        if inspect.isawaitable(result):
            import asyncio

            result = asyncio.run(_await(result))
    except Exception as exc:  # noqa: BLE001 - the user's query code: reported as one line, exit 1
        message = " ".join(str(exc).split()) or "no message"
        raise QueryFailed(
            f"query {name!r} on run {run.id} raised {type(exc).__name__}: {message}"
        ) from None
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable
