"""Owners are identified by host, boot and pid namespace: containers sharing a hostname never take
each other's live runs (item 2)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from ductape_cli.engine import leases
from tests.process.helpers import run as run_cli

SAMPLE = """
    from ductape_cli import workflow

    @workflow("job")
    async def job(ctx):
        return await ctx.step("work", lambda: "done")
"""


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_host_id_names_boot_and_pid_namespace() -> None:
    hostname, boot, namespace = leases.HOST.split("/")
    assert hostname == socket.gethostname()
    assert boot and int(namespace) == os.stat("/proc/self/ns/pid").st_ino


def test_only_an_owner_in_our_own_pid_namespace_can_be_proven_dead() -> None:
    pid = _dead_pid()
    hostname, boot, namespace = leases.HOST.split("/")
    assert leases.owner_is_dead(f"{leases.HOST}:{pid}:tok")
    assert not leases.owner_is_dead(
        f"{hostname}/{boot}/{int(namespace) + 1}:{pid}:tok"
    )  # another container
    assert not leases.owner_is_dead(
        f"{hostname}/other-boot/{namespace}:{pid}:tok"
    )  # before a reboot
    assert not leases.owner_is_dead(f"{hostname}:{pid}:tok")  # hostname alone proves nothing


def test_a_worker_leaves_a_live_lease_held_by_a_same_named_host_alone(project) -> None:
    project.write("job", SAMPLE)
    engine = project.engine()
    run, _ = engine.start("job", {}, detach=True)
    # Another container with our hostname owns it; its pid means nothing in our namespace.
    foreign = f"{socket.gethostname()}:{_dead_pid()}:theirs"
    engine.store.set_run_fields(
        run.id, {"owner": foreign, "lease_expires_at": time.time() + 60, "status": "running"}
    )
    assert run_cli(project.root, "worker", "--once").returncode == 0
    status = json.loads(run_cli(project.root, "status", run.id, "--json").stdout)
    assert status["status"] == "running" and status["waiting"]["kind"] == "executing"
