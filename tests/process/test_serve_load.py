"""The bounded load test of `ductape serve` (bench/serve_load.py): 2,000 starts, 20 clients, 100 subscriptions.

Loopback only, count- and time-limited; slow (tests/process). The figures it measures are
recorded in bench/RESULTS.md.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("serve_load", REPO / "bench" / "serve_load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_serve_under_load(tmp_path: Path, durability_report: Any) -> None:
    bench = load_bench()
    figures = bench.measure(
        runs=2000, clients=20, subscriptions=100, time_limit=120.0, folder=tmp_path
    )
    assert figures["started"] == 2000 and figures["failed_runs"] == 0
    assert figures["subscriptions"] == 100
    assert figures["wrong_sequences"] == 0 and figures["second_round_wrong_sequences"] == 0, (
        figures["wrong_examples"]
    )
    assert figures["duplicate_events"] == 0
    assert figures["live_step_events"] > 0
    assert figures["open_subscriptions_after"] == 0
    # Memory: a second identical round must not grow the server much (nothing kept per run or subscriber).
    assert figures["rss_mb_after_second_round"] - figures["rss_mb_after"] < 16, figures
    assert figures["serve_exit_code"] == 0
    durability_report(
        f"serve load: 2000 runs, {figures['requests_per_second']} starts/s, commit→subscriber "
        f"p50 {figures['commit_to_subscriber_ms_p50']} ms p99 {figures['commit_to_subscriber_ms_p99']} ms, "
        f"RSS {figures['rss_mb_baseline']} → {figures['rss_mb_after']} → {figures['rss_mb_after_second_round']} MB"
    )
