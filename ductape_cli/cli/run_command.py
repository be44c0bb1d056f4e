"""`ductape run` without typer: the command's body, and a parser for its plain argv.

Building the typer app costs more than the engine's own work on a short run,
so `main` hands `ductape run TAG [options]` here when every token is one
this parser knows (`parse_run_args`); anything else (`--help`, an unknown or
incomplete option, `--`, no tag or two, shell completion) returns None and
goes to the typer command, which prints click's usage errors. Both paths call
`run_workflow`, and a test checks `RUN_OPTIONS` against the typer command's
parameters, so the two cannot drift.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import Any

from ductape_cli.cli.basics import (
    exit_code_for,
    explain,
    notices,
    open_engine,
    output,
    parse_json_arg,
    say,
    with_progress,
)
from ductape_cli.cli.ci_report import check_junit_path, report_for_ci
from ductape_cli.cli.lazy_ssl import import_asyncio
from ductape_cli.errors import DuctapeError, InvalidInput

# option -> (keyword of run_workflow, value: None = takes the next token, else the flag's value)
RUN_OPTIONS: dict[str, tuple[str, bool | None]] = {
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


def parse_run_args(args: list[str]) -> tuple[str, dict[str, Any]] | None:
    """(tag, keywords for `run_workflow`) from the tokens after `run`, or None for typer to handle.

    Click's rules for what is accepted: an option's value is the next token
    whatever it looks like, `--name=value` for long options, a lone `-` is an
    argument, the last of a repeated option wins.
    """
    keywords: dict[str, Any] = {}
    tags: list[str] = []
    tokens = iter(args)
    for token in tokens:
        name, equals, inline = token.partition("=")
        if equals and name.startswith("--") and RUN_OPTIONS.get(name, ("", True))[1] is None:
            keywords[RUN_OPTIONS[name][0]] = inline
            continue
        if token in RUN_OPTIONS:
            keyword, flag = RUN_OPTIONS[token]
            if flag is None:
                value = next(tokens, None)
                if value is None:
                    return None
                keywords[keyword] = value
            else:
                keywords[keyword] = flag
            continue
        if token.startswith("-") and token != "-":
            return None
        tags.append(token)
    if len(tags) != 1:
        return None
    if "junit" in keywords:
        keywords["junit"] = Path(keywords["junit"])
    return tags[0], keywords


def fast_run(args: list[str]) -> int | None:
    """Run `ductape run` from its argv tokens and return the exit code; None when typer must parse them."""
    if os.environ.get("_DUCTAPE_COMPLETE"):  # shell completion is typer's
        return None
    parsed = parse_run_args(args)
    if parsed is None:
        return None
    tag, keywords = parsed
    load_engine()
    try:
        return run_workflow(tag, **keywords)
    except (DuctapeError, KeyboardInterrupt) as exc:
        return explain(exc)
    except BrokenPipeError:  # the reader went away (`| head`): exit 1 quietly, as click does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def load_engine() -> None:
    """Import what a run needs, asyncio without ssl, with the cyclic GC off meanwhile.

    Imports create ~100,000 objects and free almost none, so the collections
    they trigger find nothing; skipping them is ~3% of a short `ductape run`.
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
