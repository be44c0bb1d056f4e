"""The component runtime of one execution: what `ctx.action`, `ctx.database`, ... return.

A call made inside a step (or rollback handler) just runs: it belongs to that
step. A call made outside any step becomes a durable step of its own, tagged
``kind:name:event`` (``#2``, ``#3`` for repeats in one run), so replay returns
the journaled result instead of calling out again. What a step records as its
input is redacted (header values and `secret` fields become ``***``).

Component methods return awaitables in ``async def`` handlers and block (like
every other ctx method) in plain ``def`` handlers.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from ductape_cli.components.errors import ERROR_CLASSES
from ductape_cli.errors import ConfigError, InvalidInput, StepFailed

if TYPE_CHECKING:
    from ductape_cli.components.action import Action
    from ductape_cli.components.config import ComponentConfig
    from ductape_cli.components.database import DatabaseComponent
    from ductape_cli.components.fallback import FallbackComponent
    from ductape_cli.components.graph import GraphComponent
    from ductape_cli.components.messaging import Messaging
    from ductape_cli.components.notification import NotificationComponent
    from ductape_cli.components.quota import QuotaComponent
    from ductape_cli.components.storage import StorageComponent
    from ductape_cli.config import ProjectConfig
    from ductape_cli.engine.execution import Execution
    from ductape_cli.store import Store

F = TypeVar("F", bound=Callable[..., Any])


class ComponentRuntime:
    """Components for one execution (or, with ``execution=None``, for direct use from Python)."""

    def __init__(
        self,
        config: ProjectConfig,
        *,
        env: str | None = None,
        execution: Execution | None = None,
        store: Store | None = None,
        clock: Any = None,
    ) -> None:
        self.config = config
        self.execution = execution
        # What components may read of the run in progress (None in direct use).
        self.run = execution.view if execution is not None else None
        if env is None:
            env = self.run.env if self.run is not None else config.default_env
        self.env = env
        self._store = store
        if clock is None:
            if self.run is not None:
                clock = self.run.clock
            else:
                from ductape_cli.engine.clock import SystemClock

                clock = SystemClock()
        self.clock = clock
        self._counts: dict[str, int] = {}

    @cached_property
    def components(self) -> ComponentConfig:
        from ductape_cli.components.config import load_components

        return load_components(self.config)

    @property
    def store(self) -> Store:
        if self.run is not None:
            return self.run.store
        if self._store is None:
            from ductape_cli.store import open_store

            self._store = open_store(
                self.config.store_path,
                durability=self.config.durability,
                namespace=self.config.store_namespace,
            )
        return self._store

    def close(self) -> None:
        """Close the store this runtime opened itself (direct use only)."""
        if self._store is not None and self.execution is None:
            self._store.close()
            self._store = None

    @property
    def run_id(self) -> str | None:
        return self.run.run_id if self.run is not None else None

    # -- the components ------------------------------------------------------------

    @cached_property
    def action(self) -> Action:
        from ductape_cli.components.action import Action

        return Action(self)

    @cached_property
    def database(self) -> DatabaseComponent:
        from ductape_cli.components.database import DatabaseComponent

        return DatabaseComponent(self)

    @cached_property
    def notification(self) -> NotificationComponent:
        from ductape_cli.components.notification import NotificationComponent

        return NotificationComponent(self)

    @cached_property
    def storage(self) -> StorageComponent:
        from ductape_cli.components.storage import StorageComponent

        return StorageComponent(self)

    @cached_property
    def messaging(self) -> Messaging:
        from ductape_cli.components.messaging import Messaging

        return Messaging(self)

    @cached_property
    def quota(self) -> QuotaComponent:
        from ductape_cli.components.quota import QuotaComponent

        return QuotaComponent(self)

    @cached_property
    def fallback(self) -> FallbackComponent:
        from ductape_cli.components.fallback import FallbackComponent

        return FallbackComponent(self)

    @cached_property
    def graph(self) -> GraphComponent:
        from ductape_cli.components.graph import GraphComponent

        return GraphComponent(self)

    # -- app data (ctx.variable / ctx.constant) -----------------------------------------

    def variable(self, app: str, key: str) -> Any:
        """An app's variable for this run's env (`[apps.X.envs.ENV] variables` override the base)."""
        variables = self.components.app(app, self.env).variables
        if key not in variables:
            known = ", ".join(sorted(variables)) or "none"
            raise self.components.error(
                f"apps.{app}", "variables", f"no variable {key!r} (declared: {known})"
            )
        return variables[key]

    def constant(self, app: str, key: str) -> Any:
        constants = self.components.app(app, self.env).constants
        if key not in constants:
            known = ", ".join(sorted(constants)) or "none"
            raise self.components.error(
                f"apps.{app}", "constants", f"no constant {key!r} (declared: {known})"
            )
        return constants[key]

    # -- running a call -------------------------------------------------------------------

    def dispatch(
        self, label: str, recorded: dict[str, Any], work: Callable[[], Awaitable[Any]]
    ) -> Any:
        """Run `work` as part of the current step, or as a step of its own when outside one."""
        from ductape_cli.engine.steps import IN_STEP

        execution = self.execution
        if execution is None:
            return work()
        if IN_STEP.get() is not None:
            return execution.deliver(work())
        count = self._counts.get(label, 0) + 1
        self._counts[label] = count
        tag = label if count == 1 else f"{label}#{count}"
        return execution.deliver(self._as_step(tag, jsonable(recorded), work))

    async def _as_step(
        self, tag: str, recorded: dict[str, Any], work: Callable[[], Awaitable[Any]]
    ) -> Any:
        execution = self.execution
        assert execution is not None
        try:
            return await execution.run_as_step(tag, lambda _recorded: work(), recorded)
        except StepFailed as exc:
            raise self._component_error(exc) from None

    def _component_error(self, exc: StepFailed) -> StepFailed:
        """The step's failure as the component's own error class (e.g. `ActionError`), still a StepFailed.

        So a handler can ``except ActionError as e: e.status_code`` the same way on the first
        run and on replay, and an uncaught one still fails the run naming the step.
        """
        cls = _ERROR_TYPES.get(exc.error_type or "")
        if cls is None or isinstance(exc, cls):
            return exc
        combined = _combined(cls)
        error = combined.__new__(combined)
        Exception.__init__(error, exc.message)
        error.step, error.message, error.code, error.error_type = (
            exc.step,
            exc.message,
            exc.code,
            exc.error_type,
        )
        record = None
        if self.run is not None:
            record = self.run.step_record(exc.step)
        details = (record.error if record is not None else None) or {}
        for attr in ("status_code", "body"):
            setattr(error, attr, details.get(attr))
        if not hasattr(error, "errors"):
            setattr(error, "errors", [])  # noqa: B010 - FallbackError's per-provider list is not journaled
        return error


_ERROR_TYPES: dict[str, type[Exception]] = {
    **ERROR_CLASSES,
    "InvalidInput": InvalidInput,
    "ConfigError": ConfigError,
}
_COMBINED: dict[type[Exception], type[StepFailed]] = {}


def _combined(cls: type[Exception]) -> type[StepFailed]:
    if cls not in _COMBINED:
        _COMBINED[cls] = type(
            cls.__name__, (StepFailed, cls), {"__module__": cls.__module__, "__doc__": cls.__doc__}
        )
    return _COMBINED[cls]


def runtime_for(engine: Any, execution: Execution) -> ComponentRuntime:
    return ComponentRuntime(engine.config, execution=execution)


class Component:
    """Base of the facades: access to the runtime, the validated config, and `dispatch`."""

    kind = ""

    def __init__(self, runtime: ComponentRuntime) -> None:
        self.runtime = runtime

    @property
    def config(self) -> ComponentConfig:
        return self.runtime.components

    def _dispatch(
        self, label: str, recorded: dict[str, Any], work: Callable[[], Awaitable[Any]]
    ) -> Any:
        return self.runtime.dispatch(label, recorded, work)


def without_secrets(
    work: Callable[[], Awaitable[Any]], fields: list[str], secrets: list[str]
) -> Callable[[], Awaitable[Any]]:
    """`work` whose result has `secret` fields as ``***`` and secret values scrubbed.

    A result is journaled and shown in history, so a secret column or echoed
    field never reaches it, in or out of a step (replay returns what was stored).
    """
    from ductape_cli.components.errors import redact, scrub

    if not fields and not secrets:
        return work

    async def clean() -> Any:
        return scrub(redact(await work(), fields), secrets)

    return clean


def seed_style(method: F) -> F:
    """Also accept the seed's single options object: ``ctx.action.run({"app": ..., "event": ...})``."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and isinstance(args[0], Mapping):
            kwargs = {**{_snake(k): v for k, v in args[0].items()}, **kwargs}
            args = ()
        try:
            return method(self, *args, **kwargs)
        except TypeError as exc:
            if (
                "argument" in str(exc)
                and exc.__traceback__ is not None
                and exc.__traceback__.tb_next is None
            ):
                raise InvalidInput(f"ctx.{self.kind}.{method.__name__}: {exc}") from None
            raise

    return wrapper  # type: ignore[return-value]


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def check_retries(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"retries must be a non-negative integer, got {value!r}")
    return value


def check_mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{what} must be an object, got {type(value).__name__}")
    return dict(value)


def jsonable(value: Any) -> Any:
    """`value` as JSON data for the journal: bytes become ``"<N bytes>"``, other objects their str()."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(bytes(value))} bytes>"
    return str(value)


def secret_values(value: Any, names: list[str]) -> list[str]:
    """String values of the fields named in `names`, anywhere in `value` (to scrub from messages)."""
    wanted = {n.lower() for n in names}
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, item in node.items():
                if (
                    str(key).lower() in wanted
                    and isinstance(item, (str, int))
                    and not isinstance(item, bool)
                ):
                    found.append(str(item))
                else:
                    walk(item)
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item)

    if wanted:
        walk(value)
    return found
