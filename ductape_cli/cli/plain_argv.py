"""Commands `main` runs without building the typer app: a parser for their plain argv, and the call.

Building the typer app costs more than the work of a short command (`import
typer` alone is ~2.8× `python -c pass`), so `main` hands `ductape run TAG
[options]`, `status RUN_ID` and `history RUN_ID` here when every token is one
the command's option table knows (`cli/app.PLAIN_COMMANDS`). Anything else (`--help`, an unknown or
incomplete option, `--`, no argument or two, shell completion) is None and
goes to the typer command, which prints click's usage errors. Both paths call
the same body, and a test checks each table against the typer command's
parameters, so they cannot drift.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from ductape_cli.cli.basics import explain
from ductape_cli.errors import DuctapeError

# option -> (keyword of the command's body, None = takes the next token, else the flag's value)
Options = dict[str, tuple[str, bool | None]]


def parse_plain(args: list[str], options: Options) -> tuple[str, dict[str, Any]] | None:
    """(the one argument, keywords) from a command's tokens, or None for typer to handle.

    Click's rules for what is accepted: an option's value is the next token
    whatever it looks like, `--name=value` for long options, a lone `-` is an
    argument, the last of a repeated option wins.
    """
    keywords: dict[str, Any] = {}
    arguments: list[str] = []
    tokens = iter(args)
    for token in tokens:
        name, equals, inline = token.partition("=")
        if equals and name.startswith("--") and options.get(name, ("", True))[1] is None:
            keywords[options[name][0]] = inline
            continue
        if token in options:
            keyword, flag = options[token]
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
        arguments.append(token)
    if len(arguments) != 1:
        return None
    return arguments[0], keywords


def call_plain(
    parsed: tuple[str, dict[str, Any]] | None,
    body: Callable[..., int],
    prepare: Callable[[], None] | None = None,
) -> int | None:
    """Run `body(argument, **keywords)` and return its exit code; None when typer must parse the argv."""
    if parsed is None or os.environ.get("_DUCTAPE_COMPLETE"):  # shell completion is typer's
        return None
    if prepare is not None:
        prepare()
    argument, keywords = parsed
    try:
        return body(argument, **keywords)
    except (DuctapeError, KeyboardInterrupt) as exc:
        return explain(exc)
    except BrokenPipeError:  # the reader went away (`| head`): exit 1 quietly, as click does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
