"""The workflow shapes, written once as data so both engines run exactly the same work."""

from __future__ import annotations

from typing import Any

# A 1 KB JSON object (1,049 bytes compact): what figure 3 returns from every step.
PAYLOAD_1KB: dict[str, Any] = {
    "id": "order_0000",
    "items": [
        {"sku": f"sku-{i:04d}", "qty": i % 7 + 1, "price": 1999 + i, "name": f"item number {i}"}
        for i in range(15)
    ],
    "note": "x" * 60,
}

# (name in the table, steps per workflow, step output)
SHAPES = {
    "steps10": (10, None),
    "steps1": (1, None),
    "steps10-1kb": (10, PAYLOAD_1KB),
}

DUCTAPE_MODULE = '''\
"""Benchmark workflows, written by bench/run.py."""

from ductape_cli import workflow

PAYLOAD = {payload!r}


def noop():
    return None


def kilobyte():
    return PAYLOAD


def audit(user, fail):
    if fail:
        raise ValueError("audit log unavailable")
    return {{"action": "user_created", "user_id": user["id"]}}


@workflow("steps10")
async def steps10(ctx):
    for i in range(10):
        await ctx.step(f"s{{i}}", noop)
    return {{"ok": True}}


@workflow("steps3")
async def steps3(ctx):
    for i in range(3):
        await ctx.step(f"s{{i}}", noop)
    return {{"ok": True}}


@workflow("steps1")
async def steps1(ctx):
    await ctx.step("s0", noop)
    return {{"ok": True}}


@workflow("steps10-1kb")
async def steps10_1kb(ctx):
    for i in range(10):
        await ctx.step(f"s{{i}}", kilobyte)
    return {{"ok": True}}


@workflow("sample3", name="Three-step sample")
async def sample3(ctx):
    user = await ctx.step("create-user", lambda: {{"id": "usr_" + ctx.default(ctx.input.name, "jane"), "name": ctx.default(ctx.input.name, "jane")}})
    await ctx.step("send-welcome", lambda: {{"sent_to": user["id"]}})
    await ctx.step("audit-log", lambda: audit(user, ctx.input.fail))
    return {{"success": True, "userId": user["id"]}}


@workflow("long")
async def long(ctx):
    for i in range(ctx.input["steps"]):
        await ctx.step(f"s{{i}}", noop)
    return {{"ok": True}}
'''


def ductape_module() -> str:
    return DUCTAPE_MODULE.format(payload=PAYLOAD_1KB)


def toml(durability: str) -> str:
    return (
        "[project]\n"
        'name = "bench"\n'
        'workflows = "workflows"\n'
        'store = ".ductape/state.db"\n'
        'default_env = "dev"\n'
        f'durability = "{durability}"\n'
    )
