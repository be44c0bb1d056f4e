"""The `ctx` contract: the typed `Context` a handler annotates with, and the checks both sides share.

Two objects implement it: the engine's context (`engine/context.py`), which
runs and journals, and the recorder's (`recording.py`), which `ductape
define` drives to learn a workflow's shape without running anything. Both
validate their arguments with the functions below, so `define` rejects
exactly what a run would, with the same words; `tests/test_architecture.py`
fails when a method exists on one and not on the other.

Annotate handlers with it::

    from ductape_cli import Context, workflow

    @workflow("signup")
    async def signup(ctx: Context) -> dict[str, str]:
        user = await ctx.step("create-user", create_user)   # the type create_user returns
        ...

In a plain ``def`` handler the same calls return their values directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol, TypeVar, overload, runtime_checkable

T = TypeVar("T")

DUPLICATE_TAG_HINT = "give each iteration its own tag, e.g. f\"process-{item['id']}\""


def step_tag_problem(tag: object) -> str | None:
    """Why `tag` cannot name a step, or None."""
    if not isinstance(tag, str) or not tag:
        return f"a step tag must be a non-empty string, got {tag!r}"
    return None


def duplicate_tag(tag: str, where: str | None = None) -> str:
    """The message for a step tag used twice in one run (`where`: the call site, when known)."""
    return (
        f"duplicate step tag {tag!r}"
        + (f" in one run ({where})" if where else "")
        + f"; {DUPLICATE_TAG_HINT}"
    )


def concurrency_problem(concurrency: object) -> str | None:
    """Why `ctx.parallel(..., concurrency=...)` is refused, or None (None means no limit)."""
    if concurrency is None:
        return None
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        return "ctx.parallel concurrency must be at least 1"
    return None


def signal_names(names: object) -> list[str] | None:
    """`wait_for_signal`'s names as a list: one name or a list/tuple of non-empty names; None if not."""
    wanted = (
        [names]
        if isinstance(names, str)
        else list(names)
        if isinstance(names, (list, tuple))
        else None
    )
    if not wanted or not all(isinstance(n, str) and n for n in wanted):
        return None
    return wanted


def undeclared_signals(wanted: list[str], declared: Iterable[str]) -> list[str]:
    """The names a `wait_for_signal` waits for that `define(signals=...)` does not declare."""
    known = set(declared)
    return [n for n in wanted if known and n not in known]


def checkpoint_name_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return f"a checkpoint needs a non-empty name, got {name!r}"
    return None


class Log(Protocol):
    """`ctx.log`: stored as history events, not repeated on replay."""

    def debug(self, message: str, data: Any = None, **fields: Any) -> Any: ...
    def info(self, message: str, data: Any = None, **fields: Any) -> Any: ...
    def warn(self, message: str, data: Any = None, **fields: Any) -> Any: ...
    def warning(self, message: str, data: Any = None, **fields: Any) -> Any: ...
    def error(self, message: str, data: Any = None, **fields: Any) -> Any: ...


@runtime_checkable
class Context(Protocol):
    """What a handler receives as `ctx`. Durable calls return awaitables in an ``async def`` handler."""

    @property
    def workflow_id(self) -> Any: ...  # the run id (a placeholder while `define` records)
    @property
    def workflow_tag(self) -> str: ...
    @property
    def env(self) -> str | None: ...
    @property
    def product(self) -> str | None: ...
    @property
    def input(self) -> Any: ...  # the run input: ``ctx.input.email`` or ``ctx.input["email"]``
    @property
    def context(self) -> dict[str, Any]: ...
    @property
    def parent_id(self) -> str | None: ...
    @property
    def is_replay(self) -> bool: ...
    @property
    def replayed_from(self) -> str | None: ...
    @property
    def replay_reason(self) -> str | None: ...
    @property
    def restarted_from(self) -> str | None: ...
    @property
    def log(self) -> Log: ...
    @property
    def transform(self) -> Any: ...

    @property
    def steps(self) -> dict[str, Any]: ...
    @property
    def completed_steps(self) -> list[str]: ...
    @property
    def current_step(self) -> str | None: ...
    @property
    def state(self) -> dict[str, Any]: ...
    @property
    def checkpoint_name(self) -> str | None: ...
    @property
    def checkpoint_data(self) -> Any: ...
    @property
    def is_restored(self) -> bool: ...
    @property
    def restored_checkpoint(self) -> dict[str, Any] | None: ...

    def set_state(self, key: str, value: Any) -> Any: ...
    def get_state(self, key: str, default: Any = None) -> Any: ...
    @staticmethod
    def default(value: Any, fallback: Any) -> Any: ...
    def variable(self, app: str, key: str) -> Any: ...
    def constant(self, app: str, key: str) -> Any: ...
    def now(self) -> datetime: ...

    @overload
    def step(
        self,
        tag: str,
        fn: Callable[..., Awaitable[T]],
        rollback: Callable[..., Any] | None = None,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Awaitable[T]: ...
    @overload
    def step(
        self,
        tag: str,
        fn: Callable[..., T],
        rollback: Callable[..., Any] | None = None,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Awaitable[T]: ...
    def parallel(self, calls: Iterable[Any], *, concurrency: int | None = None) -> Any: ...
    def sleep(self, duration: int | float | str, *, name: str | None = None) -> Any: ...
    def wait_for_signal(
        self,
        names: str | list[str],
        options: Mapping[str, Any] | None = None,
        *,
        timeout: int | str | None = None,
    ) -> Any: ...
    def checkpoint(self, name: str, data: Any = None) -> Any: ...
    def trigger_rollback(self, reason: str = "manual rollback") -> Any: ...
    def patched(self, change_id: str) -> bool: ...
    def workflow(
        self,
        child_id: str,
        tag: str,
        input: Any = None,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any: ...
    def create_hook(self, name: str, data: Any = None) -> Any: ...
    def emit_event(self, type: str, payload: Any = None) -> Any: ...

    # The seed's camelCase spellings.
    def setState(self, key: str, value: Any) -> Any: ...  # noqa: N802
    def getState(self, key: str, default: Any = None) -> Any: ...  # noqa: N802
    def waitForSignal(  # noqa: N802
        self,
        names: str | list[str],
        options: Mapping[str, Any] | None = None,
        *,
        timeout: int | str | None = None,
    ) -> Any: ...
    def triggerRollback(self, reason: str = "manual rollback") -> Any: ...  # noqa: N802

    # Components declared in ductape.toml.
    @property
    def action(self) -> Any: ...
    @property
    def database(self) -> Any: ...
    @property
    def notification(self) -> Any: ...
    @property
    def storage(self) -> Any: ...
    @property
    def messaging(self) -> Any: ...
    @property
    def publish(self) -> Any: ...
    @property
    def quota(self) -> Any: ...
    @property
    def fallback(self) -> Any: ...
    @property
    def graph(self) -> Any: ...
