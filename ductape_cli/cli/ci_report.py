"""CI reports of a run: the --junit XML file and GitHub annotations and job summary (no typer: `run`'s fast path uses it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ductape_cli.cli.basics import say
from ductape_cli.errors import InvalidInput

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine


def check_junit_path(path: Path | None) -> None:
    """Refuse an unwritable --junit target before anything runs."""
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InvalidInput(
            f"--junit {path} is a folder; give a file path such as {path / 'ductape.xml'}"
        )
    if not folder.is_dir():
        raise InvalidInput(f"--junit {path}: folder {folder} does not exist")


def report_for_ci(
    eng: Engine, result: dict[str, Any], junit: Path | None, annotations: bool | None
) -> None:
    """Write the JUnit file and the GitHub annotations and summary for the run `result` describes."""
    from ductape_cli.render import github

    wanted = github.enabled(annotations)
    if junit is None and not wanted:
        return
    from ductape_cli.engine.ci import run_report

    report = run_report(eng, result["workflow_id"])
    if junit is not None:
        from ductape_cli.render.junit import junit_xml

        try:
            junit.write_text(junit_xml(report), encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write --junit {junit}: {exc.strerror or exc}") from None
    if wanted:
        emit_commands(github.run_annotations(report))
        append_summary(github.summary_markdown(report))


def emit_commands(lines: list[str]) -> None:
    """Workflow commands go to stderr: the runner reads both streams, and stdout stays clean for --json."""
    for line in lines:
        say(line)


def append_summary(markdown: str) -> None:
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
    except OSError as exc:
        say(f"ductape: cannot append to GITHUB_STEP_SUMMARY {target}: {exc.strerror or exc}")
