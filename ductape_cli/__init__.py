"""ductape: a local-first durable workflow engine.

Public API: `workflow`, `define`, `Context`, `Engine`, and the errors a handler
may catch (`StepFailed`, `SignalTimeout`, `ChildWorkflowFailed`). The engine is
imported lazily so that `ductape --help` stays fast.
"""

from typing import Any

from ductape_cli.definition import WorkflowDefinition, define, workflow
from ductape_cli.errors import (
    ChildWorkflowFailed,
    DuctapeError,
    NonDeterminismError,
    SignalTimeout,
    StepFailed,
)

__all__ = [
    "ChildWorkflowFailed",
    "Context",
    "DuctapeError",
    "Engine",
    "NonDeterminismError",
    "SignalTimeout",
    "StepFailed",
    "WorkflowDefinition",
    "define",
    "workflow",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Context":
        from ductape_cli.engine.context import Context

        return Context
    if name == "Engine":
        from ductape_cli.engine.engine import Engine

        return Engine
    raise AttributeError(name)
