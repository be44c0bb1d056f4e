"""The real services tests talk to (DESIGN §11): skip with one line where absent, fail in CI.

`.ci/run` sets DUCTAPE_REQUIRE_SERVICES=1, which turns every such skip into a
failure, so CI never passes without PostgreSQL, the brokers or Chromium.
"""

from __future__ import annotations

import os
import socket

import pytest

REQUIRED = os.environ.get("DUCTAPE_REQUIRE_SERVICES") == "1"


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def need(what: str, ok: bool, why: str) -> None:
    """Skip the calling test with one line when `ok` is false (fail instead in CI)."""
    if ok:
        return
    message = f"{what} unavailable: {why}"
    if REQUIRED:
        pytest.fail(message + " (DUCTAPE_REQUIRE_SERVICES=1 makes this a failure)", pytrace=False)
    pytest.skip(message)


def need_module(name: str, extra: str = "test") -> object:
    """Import `name` for a test, or skip with one line (fail in CI) naming the extra that brings it."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        need(name, False, f"not installed (pip install -e '.[{extra}]')")
        raise  # unreachable: need() skipped or failed
