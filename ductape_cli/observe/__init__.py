"""Observability hooked to the engine through its one listener seam (`Engine.emit`): metrics and traces.

Nothing here is imported or costs anything unless enabled: traces when the
`otel` extra is installed and OTEL_* configuration asks for an exporter,
metrics when `ductape worker --metrics-port` (or an ASGI server) asks for them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine


def install_from_environment(engine: Engine) -> None:
    """Enable what the environment configures (today: traces from OTEL_* variables)."""
    if not any(key.startswith("OTEL_") for key in os.environ):
        return  # nothing asks for traces: `tracing` is not even imported (start-up of every run)
    from ductape_cli.observe import tracing

    if tracing.configured():
        tracing.enable_from_environment(engine)
