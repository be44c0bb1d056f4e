"""`ductape run` without typer: the command's body, and its option table for `cli/plain_argv.py`.

The typer command (`cli/run_cmds.run`) calls the same `run_workflow`.
"""

from __future__ import annotations

import gc
from pathlib import Path

from ductape_cli.cli.basics import (
    exit_code_for,
    notices,
    open_engine,
    output,
    parse_json_arg,
    say,
    with_progress,
)
from ductape_cli.cli.ci_report import check_junit_path, report_for_ci
from ductape_cli.cli.lazy_ssl import import_asyncio
from ductape_cli.cli.plain_argv import Options, Parsed, call_plain, parse_plain
from ductape_cli.errors import InvalidInput

RUN_OPTIONS: Options = {
    "--input": ("input", None),
    "-i": ("input", None),
    "--env": ("env", None),
    "-e": ("env", None),
    "--workflow-id": ("workflow_id", None),
    "--idempotency-key": ("idempotency_key", None),
    "--timeout": ("timeout", None),
    "--context": ("context", None),
    "--junit": ("junit", None),
    "--detach": ("detach", True),
    "--wait": ("wait", True),
    "--annotations": ("annotations", True),
    "--no-annotations": ("annotations", False),
    "--json": ("as_json", True),
}


def parse_run_args(args: list[str]) -> Parsed | None:
    """([tag], keywords for `run_workflow`) from the tokens after `run`, or None for typer to handle."""
    return parse_plain(args, RUN_OPTIONS, convert={"junit": Path})


def fast_run(args: list[str]) -> int | None:
    """`ductape run` from its argv tokens: the exit code, or None when typer must parse them."""
    return call_plain(parse_run_args(args), run_workflow, prepare=load_engine)


def load_engine() -> None:
    """Import what a run needs, asyncio without ssl, with the cyclic GC off meanwhile.

    The imports make ~20,000 tracked objects that live as long as the process,
    so the collections they trigger, and later ones walking them (at exit too),
    find nothing; with the GC off meanwhile and the result frozen, a short
    `ductape run` does ~8% fewer instructions.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        import_asyncio()  # before the engine imports it: ssl stays out until a TLS connection
        import ductape_cli.engine.engine
        import ductape_cli.engine.execution  # noqa: F401
    finally:
        gc.freeze()  # what the imports made lives as long as the process: no collection walks it
        if was_enabled:
            gc.enable()


def run_workflow(
    tag: str,
    *,
    input: str | None = None,
    env: str | None = None,
    workflow_id: str | None = None,
    idempotency_key: str | None = None,
    timeout: str | None = None,
    context: str | None = None,
    detach: bool = False,
    wait: bool = False,
    junit: Path | None = None,
    annotations: bool | None = None,
    as_json: bool = False,
) -> int:
    """Start `tag`, follow it until it ends or waits, print its result; returns the exit code."""
    payload = parse_json_arg(input, "--input", default={})
    check_junit_path(junit)
    if payload is None:  # the engine reads a missing input as {}; an explicit null is not an object
        raise InvalidInput(f"input for {tag} must be a JSON object, got null")
    extra = parse_json_arg(context, "--context", default=None)
    if extra is not None and not isinstance(extra, dict):
        raise InvalidInput("--context must be a JSON object")
    eng = open_engine()
    try:
        eng.check_components(env or eng.config.default_env)
        started, created = eng.start(
            tag,
            payload,
            env=env,
            workflow_id=workflow_id,
            idempotency_key=idempotency_key,
            timeout=timeout,
            context=extra,
            detach=detach,
        )
        notices(eng, as_json)
        if detach or not created:
            if not created and not as_json:
                say(
                    f"ductape: idempotency key {idempotency_key!r} already started run {started.id}"
                )
            result = eng.result(started.id)
        else:
            result = with_progress(
                tag,
                as_json,
                lambda obs: eng.drive(started.id, wait=wait, observer=obs, started=started),
            )
        report_for_ci(eng, result, junit, annotations)
        output("result", result, as_json)
        return exit_code_for(result["status"])
    finally:
        eng.close()
