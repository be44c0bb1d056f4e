"""Batch processing, from the VSKI seed's fan-out/fan-in: process items in parallel, then aggregate."""

from ductape_cli import workflow


def process_item(item: dict) -> dict:
    return {
        "id": item["id"],
        "success": item.get("value", 0) >= 0,
        "doubled": item.get("value", 0) * 2,
    }


@workflow(
    "batch-process",
    name="Batch Process",
    # The loop runs over a step result: give recording a sample so it records the per-item steps.
    branch_overrides={"get-batch": [{"id": "1"}, {"id": "2"}]},
)
async def batch_process(ctx):
    items = await ctx.step("get-batch", lambda: list(ctx.input.items or []))
    results = await ctx.parallel(
        [ctx.step(f"process-{item['id']}", lambda item=item: process_item(item)) for item in items],
        concurrency=8,
    )
    summary = await ctx.step(
        "aggregate",
        lambda: {
            "total": len(results),
            "succeeded": sum(1 for r in results if r["success"]),
            "failed": sum(1 for r in results if not r["success"]),
        },
    )
    return summary
