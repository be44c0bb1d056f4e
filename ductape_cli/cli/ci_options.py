"""The CI options `run`, `resume`, `replay` and `signal` share: --junit PATH and GitHub annotations.

What they do is `cli/ci_report.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ductape_cli.cli.ci_report import check_junit_path, report_for_ci

__all__ = ["AnnotationsOption", "JunitOption", "check_junit_path", "report_for_ci"]

JunitOption = Annotated[
    Path | None,
    typer.Option(
        "--junit",
        metavar="PATH",
        help="Also write a JUnit XML report of the run (one testcase per step) to PATH.",
    ),
]
AnnotationsOption = Annotated[
    bool | None,
    typer.Option(
        "--annotations/--no-annotations",
        help="GitHub Actions workflow commands for failures and a Markdown job summary (default: on when GITHUB_ACTIONS=true).",
        show_default=False,
    ),
]
