"""`ductape init`: scaffold a project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ductape_cli.cli.common import command
from ductape_cli.errors import InvalidInput

CONFIG_TEMPLATE = """\
[project]
name = "example"
workflows = "workflows"
store = ".ductape/state.db"
default_env = "dev"
durability = "normal"   # "full" also survives power loss (synchronous=FULL)

[envs.dev]
active = true

[envs.prd]
active = true
"""

EXAMPLE_TEMPLATE = '''\
"""An example workflow: three steps, one with a rollback.

Run it:  ductape run hello --input '{"name": "Ada"}'
"""

from ductape_cli import workflow


def greet(name: str) -> dict:
    return {"greeting": f"Hello, {name}!"}


@workflow("hello", name="Hello", timeout="1m")
async def hello(ctx):
    ctx.log.info("starting", {"name": ctx.input.name})
    reserved = await ctx.step("reserve", lambda: {"slot": 1}, rollback=lambda out: print("released", out))
    greeting = await ctx.step("greet", lambda: greet(ctx.input.name or "world"))
    await ctx.checkpoint("greeted", greeting)
    await ctx.step("record", lambda: {"slot": reserved["slot"], "done": True})
    return greeting
'''


def config_text(name: str) -> str:
    """The scaffold's ductape.toml with `name` set by tomlkit: any name is quoted right, comments stay."""
    import tomlkit

    document = tomlkit.parse(CONFIG_TEMPLATE)
    document["project"]["name"] = name
    return tomlkit.dumps(document)


def init(
    directory: Annotated[Path, typer.Argument(help="Project folder (created if missing).")] = Path(
        "."
    ),
    name: Annotated[str | None, typer.Option("--name", help="Project name (ctx.product).")] = None,
) -> None:
    """Scaffold ductape.toml and an example workflow; never overwrites.

    Example: ductape init my-project && cd my-project && ductape run hello --input '{"name": "Ada"}'
    """
    directory = directory.resolve()
    config, example = directory / "ductape.toml", directory / "workflows" / "hello.py"
    for path in (config, example):
        if path.exists():
            raise InvalidInput(f"{path} already exists; init never overwrites")
    example.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(config_text(name or directory.name), encoding="utf-8")
    example.write_text(EXAMPLE_TEMPLATE, encoding="utf-8")
    typer.echo(f"created {config}")
    typer.echo(f"created {example}")
    typer.echo('next: ductape run hello --input \'{"name": "Ada"}\'')


def register(app: typer.Typer) -> None:
    command(app, init)
