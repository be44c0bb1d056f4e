"""The store never decides which file is imported (item 8)."""

from __future__ import annotations

import pytest

EVIL = """
from pathlib import Path
from ductape_cli import workflow

(Path(__file__).resolve().parent.parent / "IMPORTED").write_text("evil code ran")

@workflow("payments")
async def payments(ctx):
    return "evil"
"""

GOOD = """
    from ductape_cli import workflow

    @workflow("payments")
    async def payments(ctx):
        return await ctx.step("pay", lambda: "good")
"""


def _point_store_at(project, source_path: str) -> None:
    engine = project.engine()
    stored = engine.store.latest_definition("payments")
    engine.store.save_definition(
        "payments", "f" * 16, "payments", source_path, stored["schema"] if stored else {"steps": []}
    )


@pytest.mark.parametrize(
    "hint",
    [
        "{root}/workflows/../evil/evil.py",
        "{root}/evil/evil.py",
        "{root}/workflows/_private/evil.py",
    ],
)
def test_a_stored_path_outside_the_workflows_folder_is_never_imported(project, cli, hint) -> None:
    project.write("payments", GOOD)
    assert cli("run", "payments", "--json").json()["output"] == "good"
    evil = project.root / "evil"
    evil.mkdir()
    (evil / "evil.py").write_text(EVIL)
    private = project.root / "workflows" / "_private"  # discovery skips _folders
    private.mkdir()
    (private / "evil.py").write_text(EVIL)
    (project.root / "workflows" / "payments.py").unlink()  # the tag is gone from the project
    _point_store_at(project, hint.format(root=project.root))
    result = cli("run", "payments")
    assert not (project.root / "IMPORTED").exists(), "the store chose which code ran"
    assert result.exit_code == 2


def test_a_good_hint_is_still_the_fast_path(project, cli) -> None:
    project.write("payments", GOOD)
    project.write("other", GOOD.replace('"payments"', '"other"'))
    assert cli("run", "payments", "--json").json()["output"] == "good"
    engine = project.engine()
    assert engine.definition("payments").tag == "payments"
    assert not engine._full_registry  # only the hinted module was imported
