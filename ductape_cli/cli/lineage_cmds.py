"""Commands that make runs from runs and read their family: replay, restart, related, compare."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ductape_cli.cli.basics import notices, with_progress
from ductape_cli.cli.ci_options import (
    AnnotationsOption,
    JunitOption,
    check_junit_path,
    report_for_ci,
)
from ductape_cli.cli.common import (
    JsonOption,
    RunId,
    command,
    complete_run_ids,
    engine,
    parse_assignment,
    parse_json_arg,
)
from ductape_cli.cli.read_command import show_compare, show_related
from ductape_cli.cli.run_cmds import WaitOption, show_result
from ductape_cli.errors import InvalidInput

ReasonOption = Annotated[
    str | None,
    typer.Option("--reason", "-r", help="Why; the new run sees it as ctx.replay_reason."),
]
IdempotencyOption = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        help="Return the existing run with this key instead of starting another.",
    ),
]
TimeoutOption = Annotated[
    str | None,
    typer.Option(
        "--timeout", help="Overall run timeout: ms or 30s, 5m, 1h (default: the original's)."
    ),
]


def replay(
    run_id: RunId,
    reason: ReasonOption = None,
    idempotency_key: IdempotencyOption = None,
    timeout: TimeoutOption = None,
    from_step: Annotated[
        str | None,
        typer.Option(
            "--from-step",
            help="Steps before this one return the original's outputs; it and later steps run.",
        ),
    ] = None,
    step_output: Annotated[
        list[str] | None,
        typer.Option(
            "--step-output",
            help="TAG=JSON: the output a step before --from-step returns (repeatable).",
        ),
    ] = None,
    wait: WaitOption = False,
    junit: JunitOption = None,
    annotations: AnnotationsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a workflow again as a new run with the original input and fresh state.

    Example: ductape replay wf_3f2a9c1d7b4e --from-step process-payment --step-output 'validate={"available": true}'
    """
    outputs = dict(_step_output(text) for text in step_output or [])
    check_junit_path(junit)
    eng = engine()
    result = with_progress(
        run_id,
        as_json,
        lambda obs: eng.replay(
            run_id,
            reason=reason,
            idempotency_key=idempotency_key,
            timeout=timeout,
            from_step=from_step,
            step_outputs=outputs,
            observer=obs,
            wait=wait,
        ),
    )
    _announce(eng, as_json, f"replay of {result.get('replayed_from')}: {result['workflow_id']}")
    report_for_ci(eng, result, junit, annotations)
    show_result(result, as_json)


def restart(
    run_id: RunId,
    input: Annotated[
        str | None,
        typer.Option("--input", "-i", help="New input as JSON, @file.json, or - for stdin."),
    ] = None,
    set_values: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY=VALUE on the original input; VALUE is JSON if it parses, dotted keys reach nested fields (repeatable).",
        ),
    ] = None,
    input_override: Annotated[
        str | None,
        typer.Option(
            "--input-override",
            help="JSON object of fields to change; with --merge merged into the original input.",
        ),
    ] = None,
    merge: Annotated[
        bool,
        typer.Option(
            "--merge",
            help="Deep-merge --input/--input-override into the original input instead of replacing it.",
        ),
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why; kept with the new run's lineage.")
    ] = None,
    idempotency_key: IdempotencyOption = None,
    timeout: TimeoutOption = None,
    wait: WaitOption = False,
    as_json: JsonOption = False,
) -> None:
    """Run a workflow again as a new run with new or corrected input and fresh state.

    Example: ductape restart wf_3f2a9c1d7b4e --set email=corrected@example.com
    """
    new_input = parse_json_arg(input, "--input")
    override = parse_json_arg(input_override, "--input-override")
    pairs = [parse_assignment(text, "--set") for text in set_values or []]
    eng = engine()
    result = with_progress(
        run_id,
        as_json,
        lambda obs: eng.restart(
            run_id,
            input=new_input,
            set_values=pairs,
            input_override=override,
            merge=merge,
            reason=reason,
            idempotency_key=idempotency_key,
            timeout=timeout,
            observer=obs,
            wait=wait,
        ),
    )
    _announce(eng, as_json, f"restart of {result.get('restarted_from')}: {result['workflow_id']}")
    show_result(result, as_json)


def related(run_id: RunId, as_json: JsonOption = False) -> None:
    """Show a run's family: the original, its replays, restarts, resumes and children, with each status.

    Example: ductape related wf_3f2a9c1d7b4e
    """
    raise typer.Exit(show_related(run_id, as_json=as_json))


def compare(
    run_a: Annotated[
        str,
        typer.Argument(
            metavar="RUN_A",
            help="First run id (or unique prefix).",
            autocompletion=complete_run_ids,
        ),
    ],
    run_b: Annotated[
        str,
        typer.Argument(
            metavar="RUN_B",
            help="Second run id (or unique prefix).",
            autocompletion=complete_run_ids,
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Compare two runs: input fields, each step's status, output and error, the outputs, durations.

    Example: ductape compare wf_3f2a9c1d7b4e wf_9c1d7b4e3f2a
    """
    raise typer.Exit(show_compare(run_a, run_b, as_json=as_json))


def _step_output(text: str) -> tuple[str, Any]:
    tag, sep, value = text.partition("=")
    if not sep or not tag.strip():
        raise InvalidInput(f"--step-output expects TAG=JSON, got {text!r}")
    from ductape_cli.jsonin import parse_json

    return tag.strip(), parse_json(value, f"--step-output {tag.strip()}")


def _announce(eng: Any, as_json: bool, line: str) -> None:
    notices(eng, as_json)
    if not as_json:
        typer.echo(line)


def register(app: typer.Typer) -> None:
    for fn in (replay, restart, related, compare):
        command(app, fn)
