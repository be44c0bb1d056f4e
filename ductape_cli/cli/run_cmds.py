"""Commands that start or move runs: run, resume, signal, hook, cancel, query."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ductape_cli.cli.basics import with_progress
from ductape_cli.cli.ci_options import (
    AnnotationsOption,
    JunitOption,
    check_junit_path,
    report_for_ci,
)
from ductape_cli.cli.common import (
    JsonOption,
    RunId,
    Tag,
    command,
    engine,
    exit_code_for,
    output,
    parse_json_arg,
)
from ductape_cli.cli.read_command import show_query
from ductape_cli.cli.run_command import run_workflow
from ductape_cli.cli.signal_command import cancel_run, send_signal

InputOption = Annotated[
    str | None, typer.Option("--input", "-i", help="Input as JSON, @file.json, or - for stdin.")
]
WaitOption = Annotated[
    bool, typer.Option("--wait", help="Keep going until the run ends, however long it waits.")
]


def show_result(result: Any, as_json: bool) -> None:
    """Print a run's result and exit with the code its status maps to."""
    output("result", result, as_json)
    raise typer.Exit(exit_code_for(result["status"]))


def run(
    tag: Tag,
    input: InputOption = None,
    env: Annotated[
        str | None,
        typer.Option(
            "--env", "-e", help="Env from ductape.toml [envs] (default: project default_env)."
        ),
    ] = None,
    workflow_id: Annotated[
        str | None, typer.Option("--workflow-id", help="Custom run id; must be unused.")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="Return the existing run with this key instead of starting another.",
        ),
    ] = None,
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="Overall run timeout: ms or 30s, 5m, 1h.")
    ] = None,
    context: Annotated[
        str | None, typer.Option("--context", help="Extra context as JSON (ctx.context).")
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Queue the run for a worker and return at once.")
    ] = False,
    wait: WaitOption = False,
    junit: JunitOption = None,
    annotations: AnnotationsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a workflow run and follow it until it ends or waits.

    Example: ductape run user-onboarding --input '{"email": "jane@example.com", "name": "Jane"}'

    Exit codes: 0 completed, 1 failed, 3 rolled back, 4 cancelled, 5 still running
    (waiting for a signal or a long sleep), 2 bad input.
    """
    raise typer.Exit(
        run_workflow(
            tag,
            input=input,
            env=env,
            workflow_id=workflow_id,
            idempotency_key=idempotency_key,
            timeout=timeout,
            context=context,
            detach=detach,
            wait=wait,
            junit=junit,
            annotations=annotations,
            as_json=as_json,
        )
    )


def resume(
    run_id: RunId,
    from_checkpoint: Annotated[
        str | None,
        typer.Option("--from-checkpoint", help="Re-run the steps after this checkpoint."),
    ] = None,
    from_step: Annotated[
        str | None, typer.Option("--from-step", help="Re-run this step and the ones after it.")
    ] = None,
    skip: Annotated[
        list[str] | None, typer.Option("--skip", help="Record this step as skipped (repeatable).")
    ] = None,
    input: Annotated[
        str | None,
        typer.Option(
            "--input",
            "-i",
            help="JSON object merged into the run's input for the re-executed part (with --from-checkpoint or --from-step).",
        ),
    ] = None,
    wait: WaitOption = False,
    junit: JunitOption = None,
    annotations: AnnotationsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Continue a run from its journal: a crashed run, or (with options) a failed one.

    Example: ductape resume wf_3f2a9c1d7b4e --from-checkpoint payment-complete --input '{"retry_payment": false}'
    """
    check_junit_path(junit)
    new_input = parse_json_arg(input, "--input")
    eng = engine()
    result = with_progress(
        run_id,
        as_json,
        lambda obs: eng.resume(
            run_id,
            from_checkpoint=from_checkpoint,
            from_step=from_step,
            skip=skip or [],
            input=new_input,
            observer=obs,
            wait=wait,
        ),
    )
    report_for_ci(eng, result, junit, annotations)
    show_result(result, as_json)


def signal(
    run_id: RunId,
    name: Annotated[str, typer.Argument(help="Signal name, as declared on the workflow.")],
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="Payload as JSON, @file.json, or -.")
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Only store the signal; do not continue the run here.")
    ] = False,
    junit: JunitOption = None,
    annotations: AnnotationsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send a signal to a waiting run; continue it here when no process owns it.

    Example: ductape signal wf_3f2a9c1d7b4e approve --data '{"approver_id": "u1", "comments": "ok"}'
    """
    raise typer.Exit(
        send_signal(
            run_id,
            name,
            data=data,
            no_wait=no_wait,
            junit=junit,
            annotations=annotations,
            as_json=as_json,
        )
    )


def hook(
    token: Annotated[str, typer.Argument(help="The hook token the workflow handed out.")],
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="Payload as JSON, @file.json, or -.")
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Only deliver; do not continue the run here.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Deliver a hook created by ctx.create_hook (single use).

    Example: ductape hook Jx2...token --data '{"approved": true}'
    """
    payload = parse_json_arg(data, "--data", default={})
    eng = engine()
    result = with_progress(
        "hook",
        as_json,
        lambda obs: eng.deliver_hook(token, payload, continue_inline=not no_wait, observer=obs),
    )
    show_result(result, as_json)


def cancel(
    run_id: RunId,
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why; recorded in the history.")
    ] = "cancelled by user",
    as_json: JsonOption = False,
) -> None:
    """Cancel a run: the rollback strategy applies and the run ends `cancelled`.

    Example: ductape cancel wf_3f2a9c1d7b4e --reason "customer asked"
    """
    raise typer.Exit(cancel_run(run_id, reason=reason, as_json=as_json))


def query(
    run_id: RunId,
    name: Annotated[str, typer.Argument(help="Query name, as declared on the workflow.")],
    as_json: JsonOption = False,
) -> None:
    """Ask a run a declared, read-only query, such as its progress.

    Example: ductape query wf_3f2a9c1d7b4e getProgress
    """
    raise typer.Exit(show_query(run_id, name, as_json=as_json))


def register(app: typer.Typer) -> None:
    for fn in (run, resume, signal, hook, cancel, query):
        command(app, fn)
