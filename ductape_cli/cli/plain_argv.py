"""Commands `main` runs without building the typer app: a parser for their plain argv, and the call.

Building the typer app costs more than the work of a short command (`import
typer` alone is ~2.8× `python -c pass`), so `main` hands `ductape run TAG
[options]`, `status RUN_ID`, `history RUN_ID`, `list [options]`, the other
reading commands, `signal` and `cancel` here when every token is one the
command's option table knows (`cli/app.PLAIN_COMMANDS`). Anything else (`--help`, an unknown or
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


Parsed = tuple[list[str], dict[str, Any]]


def parse_plain(
    args: list[str],
    options: Options,
    arguments: int = 1,
    convert: dict[str, Callable[[str], Any]] | None = None,
) -> Parsed | None:
    """(the `arguments` arguments, keywords) from a command's tokens, or None for typer to handle.

    Click's rules for what is accepted: an option's value is the next token
    whatever it looks like, `--name=value` for long options, a lone `-` is an
    argument, the last of a repeated option wins. `convert` turns a keyword's
    text into its value; a ValueError there (not a number, out of range) is
    left to typer too, which says what is wrong.
    """
    keywords: dict[str, Any] = {}
    given: list[str] = []
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
        given.append(token)
    if len(given) != arguments:
        return None
    for keyword, to_value in (convert or {}).items():
        if keyword in keywords:
            try:
                keywords[keyword] = to_value(keywords[keyword])
            except ValueError:
                return None
    return given, keywords


def call_plain(
    parsed: Parsed | None,
    body: Callable[..., int],
    prepare: Callable[[], None] | None = None,
) -> int | None:
    """Run `body(*arguments, **keywords)` and return its exit code; None when typer must parse the argv."""
    if parsed is None or os.environ.get("_DUCTAPE_COMPLETE"):  # shell completion is typer's
        return None
    if prepare is not None:
        prepare()
    given, keywords = parsed
    try:
        return body(*given, **keywords)
    except (DuctapeError, KeyboardInterrupt) as exc:
        return explain(exc)
    except BrokenPipeError:  # the reader went away (`| head`): exit 1 quietly, as click does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
