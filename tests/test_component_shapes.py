"""A definition records the shape of a component call, never the runtime values it carried."""

from __future__ import annotations

import json
from typing import Any

import pytest

PAY_FLOW = """
import os
from ductape_cli import workflow

@workflow("pay")
async def pay(ctx):
    await ctx.action.run(app="pay", event="charge", input={
        "headers": {"X-Pay-Key": os.environ["PAY_KEY"], "Accept": "application/json"},
        "body": {"card_number": ctx.input["card"], "memo": f"order {ctx.input['order']} for {os.environ['PAY_KEY']}",
                 "note": "%s", "count": 3},
    })
    await ctx.storage.upload(storage="files", input={"fileName": "blob.bin", "buffer": os.urandom(5_000_000)})
    await ctx.action.run({"app": "pay", "event": "charge", "input": {"body": os.environ["PAY_KEY"]}})
"""


@pytest.fixture
def pay_project(project: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    (project.root / "ductape.toml").write_text(
        (project.root / "ductape.toml").read_text()
        + """
[apps.pay]
base_url = "http://127.0.0.1:1"
[apps.pay.events.charge]
method = "POST"
path = "/charge"

[storage.files]
path = "files"
""",
        encoding="utf-8",
    )
    project.write("pay", PAY_FLOW.replace('"note": "%s"', '"note": "' + "n" * 500 + '"'))
    monkeypatch.setenv("PAY_KEY", "paykey-5521-secret")
    return project


def test_define_stores_the_shape_not_the_values(
    pay_project: Any, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    defined = cli("define", "--json")
    assert defined.exit_code == 0, defined.stderr
    shown = cli("show", "pay", "--json")
    assert shown.exit_code == 0
    assert "paykey-5521" not in shown.stdout
    calls = [op for op in shown.json()["schema"]["operations"] if op["kind"] == "component"]
    charge = calls[0]["args"]
    assert (charge["app"], charge["event"]) == ("pay", "charge")
    assert charge["input"]["headers"] == {"X-Pay-Key": "<str>", "Accept": "application/json"}
    body = charge["input"]["body"]
    assert body["card_number"] == "$Input{card}"
    assert body["memo"] == "order $Input{order} for <str>"
    assert body["count"] == 3
    assert len(body["note"]) < 80 and body["note"].startswith(
        "nnnn"
    )  # a bounded preview of a long literal
    assert calls[1]["args"]["input"]["buffer"] == "<bytes>"
    assert calls[2]["positional"] == [{"app": "pay", "event": "charge", "input": {"body": "<str>"}}]
    stored = pay_project.store.read_bytes()
    assert b"paykey-5521" not in stored
    assert len(shown.stdout) < 20_000  # not 5 MB of buffer

    # Same code, other key, other random bytes: the same version.
    monkeypatch.setenv("PAY_KEY", "another-key-7781")
    check = cli("define", "--check")
    assert check.exit_code == 0, check.stdout + check.stderr
    again = cli("define", "--json")
    assert [w["status"] for w in again.json()["workflows"]] == ["unchanged"]
    assert json.loads(cli("show", "pay", "--json").stdout)["versions"] == shown.json()["versions"]
