"""Request bodies of the HTTP API, as pydantic models (they make the OpenAPI schema too).

Fields take the frontend SDK's camelCase (`executionId`, `workflowId`) and the
CLI's snake_case alike; unknown fields are refused (422), so a typo never
passes silently.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class RunOptions(Body):
    timeout: int | str | None = Field(
        None, description="Overall run timeout: ms, or a duration like 30s, 5m, 1h."
    )
    retries: int | None = Field(
        None, ge=0, le=100, description="Fresh runs a worker starts if this one fails."
    )
    metadata: dict[str, Any] | None = Field(
        None, description="Your JSON object, kept with the run (16 KiB at most)."
    )
    workflow_id: str | None = Field(
        None, description="The run id to use instead of a generated one."
    )
    idempotency_key: str | None = Field(
        None, description="A second start with this key returns the first run."
    )
    env: str | None = Field(None, description="The env to run in (default: the project's).")


class StartRun(Body):
    workflow: str = Field(description="Workflow tag, e.g. process-order.")
    input: Any = Field(None, description="The run's input (JSON).")
    options: RunOptions = Field(default_factory=lambda: RunOptions.model_validate({}))


class SignalBody(Body):
    data: Any = Field(None, description="The signal's payload.")


class SignalByBody(Body):
    name: str = Field(description="Signal name.")
    data: Any = None


class CancelBody(Body):
    reason: str = Field("cancelled", max_length=1000)


class UpdateRun(Body):
    """The seed's "update": change metadata, and/or send a signal, and/or cancel."""

    metadata: dict[str, Any] | None = Field(
        None, description="Merged into the run's metadata; a null value removes a key."
    )
    signal: SignalByBody | None = None
    cancel: CancelBody | None = None


class EmitEvent(Body):
    execution_id: str
    type: str = Field(min_length=1, max_length=200, description="The custom event's type.")
    payload: Any = None


class HookLookup(Body):
    execution_id: str
    name: str | None = Field(None, description="Only the run's open hook with this name.")


class HookCall(Body):
    data: Any = None


class Replay(Body):
    reason: str | None = None
    from_step: str | None = None
    step_outputs: dict[str, Any] | None = None
    idempotency_key: str | None = None
    timeout: int | str | None = None


class Restart(Body):
    input: Any = None
    set: dict[str, Any] | None = Field(
        None, description="Dotted keys to set on the original input."
    )
    input_override: Any = None
    merge: bool = False
    reason: str | None = None
    idempotency_key: str | None = None
    timeout: int | str | None = None


class Resume(Body):
    from_checkpoint: str | None = None
    from_step: str | None = None
    skip: list[str] = Field(default_factory=list)
