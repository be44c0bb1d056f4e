"""The repository's own sample project, end to end, against the local stand-in APIs."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, Project


def load_mock_apis():
    spec = importlib.util.spec_from_file_location(
        "mock_apis", REPO / "workflows" / "_services" / "mock_apis.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A copy of the sample project, its apps pointed at the stand-in APIs on a free port."""
    shutil.copytree(
        REPO / "workflows", tmp_path / "workflows", ignore=shutil.ignore_patterns("__pycache__")
    )
    mock = load_mock_apis()
    server = mock.serve(0)
    port = server.server_address[1]
    config = (REPO / "ductape.toml").read_text().replace("127.0.0.1:8765", f"127.0.0.1:{port}")
    (tmp_path / "ductape.toml").write_text(config)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DUCTAPE_STORE", raising=False)
    for name in [m for m in sys.modules if m.startswith("ductape_workflows")]:
        del sys.modules[name]
    yield Project(tmp_path), mock
    server.shutdown()


def rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_user_onboarding_writes_the_user_the_email_and_the_audit_log(samples, cli) -> None:
    project, _ = samples
    first = cli(
        "run",
        "user-onboarding",
        "--input",
        '{"email": "jane@example.com", "name": "Jane"}',
        "--json",
    )
    assert first.exit_code == 0, first.stderr
    data = project.root / ".ductape" / "data"
    assert rows(data / "users.db", "SELECT email, name FROM users") == [
        ("jane@example.com", "Jane")
    ]
    assert rows(data / "audit.db", "SELECT action, run_id FROM audit_log") == [
        ("user_created", first.json()["workflow_id"])
    ]
    mails = list((project.root / ".ductape" / "outbox").glob("*.json"))
    assert len(mails) == 1
    mail = json.loads(mails[0].read_text())
    assert "Welcome, Jane" in json.dumps(mail)
    again = cli(
        "run",
        "user-onboarding",
        "--input",
        '{"email": "jane@example.com", "name": "Jane"}',
        "--json",
    )
    assert (
        again.exit_code == 0 and again.json()["output"] == first.json()["output"]
    )  # idempotent signup


def test_order_fulfillment_happy_path(samples, cli) -> None:
    project, _ = samples
    order = {
        "orderId": "A1",
        "customerId": "c1",
        "amount": 42,
        "email": "ann@example.com",
        "items": ["sku-1"],
    }
    result = cli("run", "order-fulfillment", "--input", json.dumps(order), "--json")
    assert result.exit_code == 0, result.stderr
    output = result.json()["output"]
    assert output["success"] is True and output["chargeId"].startswith("ch_")
    topic = cli("topics", "tail", "warehouse:new-order", "--json").json()
    assert topic[0]["message"]["items"] == ["sku-1"]
    assert rows(
        project.root / ".ductape" / "data" / "orders.db", "SELECT order_ref, status FROM orders"
    ) == [("A1", "processing")]


def test_order_fulfillment_refunds_when_the_reservation_fails(samples, cli) -> None:
    _, mock = samples
    order = {
        "orderId": "A2",
        "customerId": "c1",
        "amount": 42,
        "email": "ann@example.com",
        "items": ["fragile-vase"],
    }
    result = cli("run", "order-fulfillment", "--input", json.dumps(order), "--json")
    assert result.exit_code == 3
    data = result.json()
    assert data["failed_step"] == "reserve-inventory" and data["rollback_result"][
        "rolled_back_steps"
    ] == ["process-payment"]
    assert any(c["status"] == "refunded" for c in mock.MockApis.charges.values())


def test_order_fulfillment_fails_on_a_bad_email_then_restart_fixes_it(samples, cli) -> None:
    order = {
        "orderId": "A3",
        "customerId": "c1",
        "amount": 42,
        "email": "ann-at-example.com",
        "items": ["sku-1"],
    }
    failed = cli("run", "order-fulfillment", "--input", json.dumps(order), "--json")
    assert failed.exit_code == 1 and failed.json()["failed_step"] == "process-payment"
    assert "invalid receipt email" in failed.json()["error"]["message"]
    fixed = cli("restart", failed.json()["workflow_id"], "--set", "email=ann@example.com", "--json")
    assert fixed.exit_code == 0, fixed.stderr


def test_unavailable_items_skip_payment_by_the_compiled_condition(samples, cli) -> None:
    result = cli(
        "run",
        "order-fulfillment",
        "--input",
        '{"orderId": "A4", "items": ["out-of-stock-x"]}',
        "--json",
    )
    assert result.json()["output"]["reason"] == "items_unavailable"
    status = cli("status", result.json()["workflow_id"], "--json").json()
    skipped = {s["tag"]: s for s in status["steps"] if s["status"] == "skipped"}
    assert (
        "process-payment" in skipped
        and "$Step{validate}{available} == true" in skipped["process-payment"]["reason"]
    )


def test_expense_approval_and_batch(samples, cli) -> None:
    waiting = cli(
        "run", "expense-approval", "--input", '{"amount": 120, "employee": "jane"}', "--json"
    )
    assert waiting.exit_code == 5
    done = cli(
        "signal",
        waiting.json()["workflow_id"],
        "approved",
        "--data",
        '{"approver_id": "mgr-1"}',
        "--json",
    )
    assert done.json()["output"]["status"] == "approved"
    batch = cli(
        "run",
        "batch-process",
        "--input",
        '{"items": [{"id": "a", "value": 1}, {"id": "b", "value": -2}]}',
        "--json",
    )
    assert batch.json()["output"] == {"total": 2, "succeeded": 1, "failed": 1}


def test_define_check_passes_on_the_samples(samples, cli) -> None:
    assert cli("define").exit_code == 0
    assert cli("define", "--check").exit_code == 0


def test_the_stand_in_apis_stop_without_waiting_for_a_poll() -> None:
    """`shutdown` wakes the server's loop itself; the port is closed when it returns."""
    import socket

    mock = load_mock_apis()
    server = mock.serve(0)
    port = server.server_address[1]
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    server.shutdown()
    assert not server._thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
