"""`ductape --help` to a pipe without building the typer app (which imports every command family).

`TEXT` is what typer prints for it, generated from the app and committed;
`tests/test_root_help.py` checks that they are equal, so they cannot drift
(and regenerates it). It is served only where typer would print exactly it:
`--help` or `-h` alone, no shell completion, and at least 80 columns, to a pipe
or a terminal alike (click wraps help to the width, capped at 80, and prints it
without colour). A narrower width or anything else gets typer's own help.
"""

from __future__ import annotations

import os
import sys

CAPPED_WIDTH = 80  # click's help formatter wraps to min(columns, 80) - 2


def plain(args: list[str]) -> bool:
    """Whether typer would print `TEXT` here for `--help` (or `-h`) followed by `args`."""
    if args or os.environ.get("_DUCTAPE_COMPLETE"):
        return False
    return columns() >= CAPPED_WIDTH


def columns() -> int:
    """The width click wraps help to before its cap: `shutil.get_terminal_size().columns`,
    without importing shutil (and the compression modules it brings)."""
    try:
        width = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        width = 0
    if width > 0:
        return width
    stdout = sys.__stdout__
    if stdout is None:
        return CAPPED_WIDTH
    try:
        return os.get_terminal_size(stdout.fileno()).columns or CAPPED_WIDTH
    except (AttributeError, ValueError, OSError):
        return CAPPED_WIDTH  # not a terminal: shutil's fallback


def fast_help(args: list[str]) -> int | None:
    """`ductape --help ARGS`: print `TEXT` and return 0, or None when typer must answer."""
    if not plain(args):
        return None
    try:
        sys.stdout.write(TEXT)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`| head`): exit 1 quietly, as click does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return 0


TEXT = """\
Usage: ductape [OPTIONS] COMMAND [ARGS]...

  Local-first durable workflows: define, run, signal, replay and inspect them.

Options:
  -V, --version         Print the installed version and exit.
  --install-completion  Install completion for the current shell.
  --show-completion     Show completion for the current shell, to copy it or
                        customize the installation.
  -h, --help            Show this message and exit.

Commands:
  init        Scaffold ductape.toml and an example workflow; never...
  define      Compile the project's workflows into versioned definitions...
  show        Show one stored workflow definition: its steps, conditions,...
  workflows   List defined workflows: tag, name, latest version, how many...
  run         Start a workflow run and follow it until it ends or waits.
  resume      Continue a run from its journal: a crashed run, or (with...
  signal      Send a signal to a waiting run; continue it here when no...
  hook        Deliver a hook created by ctx.create_hook (single use).
  cancel      Cancel a run: the rollback strategy applies and the run...
  query       Ask a run a declared, read-only query, such as its progress.
  status      Show a run: status, step tree, what it waits for, output or...
  list        List runs, newest first.
  history     Show a run's event history as a timeline (or JSON, which...
  step        Show one step: status, input, output, error, attempts,...
  events      List the custom events a run emitted with ctx.emit_event...
  worker      Run due work: queued and woken runs, signals,...
  dev         Develop: re-define on every change to workflows/ or...
  replay      Run a workflow again as a new run with the original input...
  restart     Run a workflow again as a new run with new or corrected...
  related     Show a run's family: the original, its replays, restarts,...
  compare     Compare two runs: input fields, each step's status, output...
  dispatch    Schedule a workflow: once (--at, --in) or on a cron; a...
  wait        Block until a run ends, then exit with its status (for...
  export      Write a run, its journal, events, children and definition...
  import      Load an exported run (with its family) into this project's...
  prune       Delete ended runs with their journals, events and signals,...
  serve       Serve the HTTP and WebSocket API, /sdk.js for browsers, and...
  schedules   Inspect and control schedules made with `ductape dispatch`.
  topics      Topics of the declared brokers (local, Redis, RabbitMQ,...
  components  Components declared in ductape.toml ([apps], [databases],...
  store       Look after the store: backup, vacuum, migrate, info, copy.
"""
