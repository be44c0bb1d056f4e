"""Components: what `ductape.toml` declares and handlers call through `ctx`.

`ctx.action`, `ctx.database`, `ctx.notification`, `ctx.storage`,
`ctx.messaging`, `ctx.quota`, `ctx.fallback` and `ctx.graph` are the
attributes of the `ComponentRuntime` the engine makes once per execution.
Nothing heavy (pydantic, httpx) is imported until a component is used.
"""

from ductape_cli.components.errors import (
    ActionError,
    ComponentError,
    DatabaseError,
    FallbackError,
    GraphError,
    MessagingError,
    NotificationError,
    QuotaError,
    StorageError,
)
from ductape_cli.components.runtime import ComponentRuntime, runtime_for

__all__ = [
    "ActionError",
    "ComponentError",
    "ComponentRuntime",
    "DatabaseError",
    "FallbackError",
    "GraphError",
    "MessagingError",
    "NotificationError",
    "QuotaError",
    "StorageError",
    "runtime_for",
]
