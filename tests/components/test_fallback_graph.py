"""ctx.fallback over real HTTP providers, and ctx.graph traversals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ductape_cli.errors import ConfigError, InvalidInput


def providers(url: str, first_status: int = 503) -> str:
    return f"""
    [apps.stripe]
    base_url = "{url}"
    retry_delay = "5ms"
    [apps.stripe.events.create-charge]
    method = "POST"
    path = "/status/{first_status}"

    [apps.paypal]
    base_url = "{url}"
    [apps.paypal.events.create-payment]
    method = "POST"
    path = "/echo"
    [apps.paypal.events.broken]
    method = "POST"
    path = "/status/500"

    [fallbacks.payment-fallback]
    providers = [
      {{ app = "stripe", event = "create-charge", retries = 1 }},
      {{ app = "paypal", event = "create-payment" }},
    ]
    [fallbacks.all-down]
    providers = [
      {{ app = "stripe", event = "create-charge" }},
      {{ app = "paypal", event = "broken" }},
    ]
    """


FLOW = """
from ductape_cli import workflow

@workflow("pay")
async def pay(ctx):
    return await ctx.fallback.execute(fallback=ctx.input["fallback"], input={"amount": 1000, "method": "card"}, timeout=2000)
"""


def test_first_provider_fails_second_answers(make: Any, http_server: Any) -> None:
    engine = make(providers(http_server.url), FLOW)
    before = http_server.count("/status/503")
    result = engine.run("pay", {"fallback": "payment-fallback"})
    assert result["status"] == "completed", result["error"]
    out = result["output"]
    assert out["provider"] == {"app": "paypal", "event": "create-payment"}
    assert out["result"]["body"] == {
        "amount": 1000,
        "method": "card",
    }  # a plain object is sent as the body
    assert out["failed"] == [
        {
            "app": "stripe",
            "event": "create-charge",
            "status_code": 503,
            "error": out["failed"][0]["error"],
        }
    ]
    assert out["failed"][0]["error"].startswith("POST /status/503 -> 503")
    assert http_server.count("/status/503") - before == 2  # the provider's own retries=1


def test_all_providers_failing_lists_each_error(make: Any, http_server: Any) -> None:
    engine = make(
        providers(http_server.url),
        FLOW
        + """
from ductape_cli.components import FallbackError

@workflow("pay-or-explain")
async def pay_or_explain(ctx):
    try:
        await ctx.fallback.execute(fallback="all-down", input={"body": {"amount": 1}})
    except FallbackError as exc:
        return {"message": str(exc), "step": exc.step}
""",
    )
    result = engine.run("pay", {"fallback": "all-down"})
    assert result["status"] == "failed"
    assert result["failed_step"] == "fallback:all-down"
    assert result["error"]["code"] == "FALLBACK_ERROR"
    message = result["error"]["message"]
    assert message.startswith(
        "fallback all-down: all 2 providers failed: stripe.create-charge: POST /status/503 -> 503"
    )
    assert "; paypal.broken: POST /status/500 -> 500" in message
    caught = engine.run("pay-or-explain", {})
    assert caught["output"]["step"] == "fallback:all-down"
    assert caught["output"]["message"].startswith("fallback all-down: all 2 providers failed")


def test_fallback_providers_must_be_declared(runtime: Any) -> None:
    rt = runtime("""
    [apps.a]
    base_url = "http://127.0.0.1:1"
    [apps.a.events.x]
    path = "/x"
    [fallbacks.f]
    providers = [{ app = "a", event = "x" }, { app = "b", event = "y" }]
    """)
    with pytest.raises(
        ConfigError,
        match=r"ductape.toml:\d+: \[fallbacks.f\] provider app 'b' is not declared in \[apps\]",
    ):
        rt.fallback.execute(fallback="f", input={})


GRAPH = """
[graphs.social-graph]
path = "data/social.db"
[graphs.social-graph.actions.find-connections]
kind = "neighbors"
params = { node = "userId" }
depth = 1
direction = "out"
type = "FOLLOWS"
[graphs.social-graph.actions.everyone-near]
kind = "neighbors"
[graphs.social-graph.actions.path]
kind = "shortest_path"
[graphs.social-graph.actions.admins]
kind = "nodes"
label = "Admin"
[graphs.social-graph.actions.compute-influence]
kind = "sql"
sql = "SELECT COUNT(*) AS followers FROM relationships WHERE to_id = :userId AND type = 'FOLLOWS'"
"""


def run(awaitable: Any) -> Any:
    return asyncio.run(awaitable)


@pytest.fixture
def graph(runtime: Any) -> Any:
    """a -FOLLOWS-> b -FOLLOWS-> c -FOLLOWS-> d, a -KNOWS-> e, e -FOLLOWS-> d; e is an Admin."""
    g = runtime(GRAPH).graph
    for name in "abcde":
        labels = ["User", "Admin"] if name == "e" else ["User"]
        run(
            g.create_node(
                graph="social-graph", labels=labels, properties={"name": name.upper()}, id=name
            )
        )
    for source, target, kind in [
        ("a", "b", "FOLLOWS"),
        ("b", "c", "FOLLOWS"),
        ("c", "d", "FOLLOWS"),
        ("a", "e", "KNOWS"),
        ("e", "d", "FOLLOWS"),
    ]:
        run(g.create_relationship(graph="social-graph", to=target, type=kind, **{"from": source}))
    return g


def names(result: dict[str, Any]) -> list[tuple[str, int]]:
    return sorted((n["id"], n["depth"]) for n in result["nodes"])


def test_neighbors_with_depth_type_label_and_direction(graph: Any) -> None:
    follows = run(
        graph.query(graph="social-graph", action="find-connections", params={"userId": "a"})
    )
    assert follows["node"]["id"] == "a" and names(follows) == [("b", 1)]
    deeper = run(
        graph.query(
            graph="social-graph", action="find-connections", params={"userId": "a", "depth": 3}
        )
    )
    assert names(deeper) == [("b", 1), ("c", 2), ("d", 3)]
    assert {r["type"] for r in deeper["relationships"]} == {"FOLLOWS"}
    anything = run(
        graph.query(graph="social-graph", action="everyone-near", params={"node": "d", "depth": 2})
    )
    assert names(anything) == [("a", 2), ("b", 2), ("c", 1), ("e", 1)]  # both directions, any type
    admins_near = run(
        graph.query(
            graph="social-graph",
            action="everyone-near",
            params={"id": "a", "depth": 2, "label": "Admin"},
        )
    )
    assert names(admins_near) == [("e", 1)]


def test_shortest_path_and_no_path(graph: Any) -> None:
    path = run(graph.query(graph="social-graph", action="path", params={"from": "a", "to": "d"}))
    assert path["found"] is True and path["length"] == 2
    assert [n["id"] for n in path["nodes"]] == ["a", "e", "d"]
    assert [(r["from"], r["to"]) for r in path["relationships"]] == [("a", "e"), ("e", "d")]
    only_follows = run(
        graph.query(
            graph="social-graph", action="path", params={"from": "a", "to": "d", "type": "FOLLOWS"}
        )
    )
    assert [n["id"] for n in only_follows["nodes"]] == ["a", "b", "c", "d"]
    short_leash = run(
        graph.query(
            graph="social-graph",
            action="path",
            params={"from": "a", "to": "d", "type": "FOLLOWS", "max_depth": 2},
        )
    )
    assert short_leash == {"found": False, "length": None, "nodes": [], "relationships": []}


def test_update_delete_nodes_and_relationships_and_custom_actions(graph: Any) -> None:
    updated = run(
        graph.updateNode(graph="social-graph", id="a", properties={"verified": True, "name": None})
    )
    assert updated == {"id": "a", "labels": ["User"], "properties": {"verified": True}}
    assert run(
        graph.execute(graph="social-graph", action="compute-influence", input={"userId": "d"})
    ) == [{"followers": 2}]
    assert [n["id"] for n in run(graph.query(graph="social-graph", action="admins"))] == ["e"]
    rel = run(
        graph.createRelationship(
            {"graph": "social-graph", "from": "d", "to": "a", "type": "FOLLOWS"}
        )
    )
    assert run(graph.deleteRelationship(graph="social-graph", id=rel["id"])) == {
        "id": rel["id"],
        "deleted": True,
    }
    removed = run(graph.deleteNode(graph="social-graph", id="e"))
    assert removed == {"id": "e", "deleted": True, "relationships_deleted": 2}
    path = run(graph.query(graph="social-graph", action="path", params={"from": "a", "to": "d"}))
    assert path["length"] == 3


def test_graph_errors(graph: Any) -> None:
    from ductape_cli.components import GraphError

    with pytest.raises(GraphError, match="no node 'zz'"):
        run(graph.create_relationship(graph="social-graph", from_="a", to="zz", type="FOLLOWS"))
    with pytest.raises(GraphError, match="node 'a' already exists"):
        run(graph.create_node(graph="social-graph", id="a"))
    with pytest.raises(InvalidInput, match="needs params.userId"):
        run(graph.query(graph="social-graph", action="find-connections", params={"id": "a"}))
    with pytest.raises(
        ConfigError,
        match=r"\[graphs.social-graph\] no action 'nope' \(declared: admins, compute-influence",
    ):
        graph.query(graph="social-graph", action="nope")
    with pytest.raises(InvalidInput, match="needs a relationship type"):
        graph.create_relationship(graph="social-graph", from_="a", to="b")


def test_graph_calls_in_a_workflow_are_steps(make: Any, journal: Any) -> None:
    engine = make(
        GRAPH,
        """
        from ductape_cli import workflow

        @workflow("social")
        async def social(ctx):
            me = await ctx.graph.createNode(graph="social-graph", labels=["User"], properties={"name": ctx.input["name"]})
            friend = await ctx.graph.createNode(graph="social-graph", labels=["User"], properties={"name": "Friend"})
            await ctx.graph.createRelationship(graph="social-graph", **{"from": me["id"]}, to=friend["id"], type="FOLLOWS")
            return await ctx.graph.query(graph="social-graph", action="find-connections", params={"userId": me["id"]})
    """,
    )
    result = engine.run("social", {"name": "Me"})
    assert result["status"] == "completed", result["error"]
    assert [n["properties"]["name"] for n in result["output"]["nodes"]] == ["Friend"]
    assert list(journal(engine, result["workflow_id"])) == [
        "graph:social-graph:create-node",
        "graph:social-graph:create-node#2",
        "graph:social-graph:create-relationship",
        "graph:social-graph:find-connections",
    ]
