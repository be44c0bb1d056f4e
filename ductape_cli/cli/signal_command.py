"""`ductape signal` and `ductape cancel` without typer: their bodies and option tables for `cli/plain_argv.py`.

Both may drive the run on here (a signalled run continues in this process when
none owns it; a cancel runs the rollback), so the engine is loaded as `run`
loads it (`run_command.load_engine`: asyncio without ssl). The typer commands
(`cli/run_cmds.signal`, `cancel`) call the same bodies.
"""

from __future__ import annotations

from pathlib import Path

from ductape_cli.cli.basics import exit_code_for, open_engine, output, parse_json_arg, with_progress
from ductape_cli.cli.ci_report import check_junit_path, report_for_ci
from ductape_cli.cli.plain_argv import Options, call_plain, parse_plain
from ductape_cli.cli.run_command import load_engine

SIGNAL_OPTIONS: Options = {
    "--data": ("data", None),
    "-d": ("data", None),
    "--no-wait": ("no_wait", True),
    "--junit": ("junit", None),
    "--annotations": ("annotations", True),
    "--no-annotations": ("annotations", False),
    "--json": ("as_json", True),
}
CANCEL_OPTIONS: Options = {
    "--reason": ("reason", None),
    "-r": ("reason", None),
    "--json": ("as_json", True),
}


def fast_signal(args: list[str]) -> int | None:
    """`ductape signal` from its argv tokens: the exit code, or None when typer must parse them."""
    parsed = parse_plain(args, SIGNAL_OPTIONS, arguments=2, convert={"junit": Path})
    return call_plain(parsed, send_signal, prepare=load_engine)


def fast_cancel(args: list[str]) -> int | None:
    """`ductape cancel` from its argv tokens: the exit code, or None when typer must parse them."""
    return call_plain(parse_plain(args, CANCEL_OPTIONS), cancel_run, prepare=load_engine)


def send_signal(
    run_id: str,
    name: str,
    *,
    data: str | None = None,
    no_wait: bool = False,
    junit: Path | None = None,
    annotations: bool | None = None,
    as_json: bool = False,
) -> int:
    """Deliver signal `name`; continue the run here unless `no_wait`; returns its status's exit code."""
    payload = parse_json_arg(data, "--data", default={})
    check_junit_path(junit)
    eng = open_engine()
    try:
        result = with_progress(
            run_id,
            as_json,
            lambda obs: eng.signal(
                run_id, name, payload, continue_inline=not no_wait, observer=obs
            ),
        )
        report_for_ci(eng, result, junit, annotations)
        output("result", result, as_json)
        return exit_code_for(result["status"])
    finally:
        eng.close()


def cancel_run(run_id: str, *, reason: str = "cancelled by user", as_json: bool = False) -> int:
    """Cancel a run (its rollback strategy applies); returns its status's exit code."""
    eng = open_engine()
    try:
        result = with_progress(
            run_id, as_json, lambda obs: eng.cancel(run_id, reason, observer=obs)
        )
        output("cancel", result, as_json)
        return exit_code_for(result["status"])
    finally:
        eng.close()
