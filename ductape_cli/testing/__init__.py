"""Testing workflows: an engine on a scratch store with a virtual clock, mocks, and a replay check.

    def test_approval(ductape_env):                  # the pytest fixture (ductape_cli.testing.plugin)
        run = ductape_env.start("expense-approval", {"amount": 120})
        ductape_env.advance("1h")
        run.signal("approved", {"approver_id": "mgr-1"})
        assert run.result()["status"] == "completed"

Outside pytest, `with WorkflowTestEnv() as env: ...` does the same.
"""

from ductape_cli.engine.history import export_run
from ductape_cli.testing.clock import VirtualClock
from ductape_cli.testing.env import (
    Mock,
    RunHandle,
    SandboxEngine,
    WorkflowStillWaiting,
    WorkflowTestEnv,
)
from ductape_cli.testing.replayer import ReplayReport, replay_history

__all__ = [
    "Mock",
    "ReplayReport",
    "RunHandle",
    "SandboxEngine",
    "VirtualClock",
    "WorkflowStillWaiting",
    "WorkflowTestEnv",
    "export_run",
    "replay_history",
]
