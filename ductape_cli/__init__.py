"""ductape: a local-first durable workflow engine.

Public API: `workflow`, `define`, `Context` (the typed ctx a handler annotates with), `Engine` with its typed results
(`RunResult`, `RunDetail`, ...), the errors it raises (`DuctapeError` and
subclasses), and the errors a handler may catch (`StepFailed`, `SignalTimeout`,
`ChildWorkflowFailed`). Everything is
imported on first use, so `ductape --help` pays for none of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ductape_cli.ctx import Context
    from ductape_cli.definition import WorkflowDefinition, define, workflow
    from ductape_cli.engine.engine import Engine
    from ductape_cli.engine.records import (
        CancelResult,
        Comparison,
        CustomEvent,
        Family,
        RunDetail,
        RunResult,
        Schedule,
        StepDetail,
    )
    from ductape_cli.errors import (
        ChildWorkflowFailed,
        ConfigError,
        DuctapeError,
        InvalidInput,
        InvalidState,
        NonDeterminismError,
        RunNotFound,
        SignalTimeout,
        StepFailed,
        WorkflowNotFound,
    )

_WHERE = {
    "workflow": "ductape_cli.definition",
    "define": "ductape_cli.definition",
    "WorkflowDefinition": "ductape_cli.definition",
    "Context": "ductape_cli.ctx",
    "Engine": "ductape_cli.engine.engine",
    "ChildWorkflowFailed": "ductape_cli.errors",
    "DuctapeError": "ductape_cli.errors",
    "NonDeterminismError": "ductape_cli.errors",
    "SignalTimeout": "ductape_cli.errors",
    "StepFailed": "ductape_cli.errors",
    "ConfigError": "ductape_cli.errors",
    "InvalidInput": "ductape_cli.errors",
    "InvalidState": "ductape_cli.errors",
    "RunNotFound": "ductape_cli.errors",
    "WorkflowNotFound": "ductape_cli.errors",
    **{
        name: "ductape_cli.engine.records"
        for name in (
            "CancelResult",
            "Comparison",
            "CustomEvent",
            "Family",
            "RunDetail",
            "RunResult",
            "Schedule",
            "StepDetail",
        )
    },
}

__all__ = [
    "CancelResult",
    "ChildWorkflowFailed",
    "Comparison",
    "ConfigError",
    "Context",
    "CustomEvent",
    "DuctapeError",
    "Engine",
    "Family",
    "InvalidInput",
    "InvalidState",
    "NonDeterminismError",
    "RunDetail",
    "RunNotFound",
    "RunResult",
    "Schedule",
    "SignalTimeout",
    "StepDetail",
    "StepFailed",
    "WorkflowDefinition",
    "WorkflowNotFound",
    "define",
    "workflow",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":  # from package metadata, like `ductape --version`
        from ductape_cli.cli.app import installed_version

        return installed_version()
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ductape_cli' has no attribute {name!r}")
