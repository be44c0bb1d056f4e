"""Structural guarantees: one error hierarchy, one merge, one text table, one ctx contract."""

from __future__ import annotations

import pytest

from ductape_cli.components import errors as component_errors
from ductape_cli.errors import EXIT_FAILED, DuctapeError
from ductape_cli.mappings import deep_merge


@pytest.mark.parametrize("cls", [component_errors.ComponentError, *component_errors.ERROR_CLASSES.values()])
def test_component_errors_are_ductape_errors_with_their_own_code_and_exit_1(cls) -> None:
    assert issubclass(cls, DuctapeError)
    error = cls("payments: 503")
    assert error.message == str(error) == "payments: 503"
    assert error.exit_code == EXIT_FAILED and error.code.endswith("_ERROR") and error.code != "ERROR"


def test_deep_merge_merges_nested_objects_and_copies_what_it_takes() -> None:
    top = {"customer": {"address": {"city": "Oslo"}}, "items": [1]}
    merged = deep_merge({"customer": {"name": "Ada", "address": {"city": "Rome", "zip": "1"}}, "n": 1}, top)
    assert merged == {"customer": {"name": "Ada", "address": {"city": "Oslo", "zip": "1"}}, "n": 1, "items": [1]}
    merged["items"].append(2)
    assert top["items"] == [1]


def test_one_module_holds_the_operation_and_progress_wording() -> None:
    import ductape_cli.definitions as definitions
    import ductape_cli.render.live as live
    from ductape_cli.render import operations

    assert definitions.describe_operation is operations.describe_operation
    assert live.progress_line is operations.progress_line
    assert operations.progress_line("checkpoint", {"name": "paid"}) == "◆ " + operations.describe_operation({"kind": "checkpoint", "name": "paid"})
