"""`ctx.graph.*`: a property graph (labelled nodes, typed relationships) in one SQLite file.

This module is the graph's storage engine, so its SQL lives here (not in
ductape's state store). Queries are declared actions in
`[graphs.X.actions.NAME]`: `kind = "neighbors"` (params node, depth, label,
type, direction), `"shortest_path"` (from, to, type, max_depth), `"nodes"`
(label, properties) or `"sql"` (your SELECT over `nodes` / `relationships`
with named params). `params = { node = "userId" }` renames a built-in param
to the caller's name.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ductape_cli.components.config import GraphAction
from ductape_cli.components.errors import GraphError
from ductape_cli.components.runtime import Component, check_mapping, seed_style
from ductape_cli.errors import InvalidInput

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, labels TEXT NOT NULL, properties TEXT NOT NULL, created_at REAL NOT NULL)",
    (
        "CREATE TABLE IF NOT EXISTS relationships (id TEXT PRIMARY KEY, type TEXT NOT NULL, from_id TEXT NOT NULL, "
        "to_id TEXT NOT NULL, properties TEXT NOT NULL, created_at REAL NOT NULL)"
    ),
    "CREATE INDEX IF NOT EXISTS relationships_from ON relationships (from_id, type)",
    "CREATE INDEX IF NOT EXISTS relationships_to ON relationships (to_id, type)",
)


class GraphComponent(Component):
    kind = "graph"

    def _run(
        self, graph: str, operation: str, recorded: dict[str, Any], fn: Any, *args: Any
    ) -> Any:
        path = self.config.path(self.config.graph(graph).path)

        async def work() -> Any:
            return await asyncio.to_thread(_with_graph, path, graph, fn, *args)

        return self._dispatch(f"graph:{graph}:{operation}", {"graph": graph, **recorded}, work)

    @seed_style
    def create_node(
        self,
        graph: str,
        labels: list[str] | str | None = None,
        properties: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
    ) -> Any:
        """Add a node; returns ``{id, labels, properties}`` (`id` generated unless given)."""
        labels = _labels(labels)
        props = _props(properties)
        if id is not None and (not isinstance(id, str) or not id):
            raise InvalidInput(f"node id must be a non-empty string, got {id!r}")
        return self._run(
            graph,
            "create-node",
            {"labels": labels, "properties": props, "id": id},
            _create_node,
            id,
            labels,
            props,
        )

    @seed_style
    def update_node(
        self,
        graph: str,
        id: str,
        properties: Mapping[str, Any] | None = None,
        *,
        labels: list[str] | str | None = None,
    ) -> Any:
        """Merge `properties` into the node (a None value removes the key); `labels` replaces them."""
        props = _props(properties)
        new_labels = _labels(labels) if labels is not None else None
        return self._run(
            graph,
            "update-node",
            {"id": id, "properties": props},
            _update_node,
            id,
            props,
            new_labels,
        )

    @seed_style
    def delete_node(self, graph: str, id: str) -> Any:
        """Remove a node and its relationships: ``{deleted, relationships_deleted}``."""
        return self._run(graph, "delete-node", {"id": id}, _delete_node, id)

    @seed_style
    def get_node(self, graph: str, id: str) -> Any:
        return self._run(graph, "get-node", {"id": id}, _get_node, id)

    @seed_style
    def create_relationship(
        self,
        graph: str,
        from_: str | None = None,
        to: str | None = None,
        type: str | None = None,
        properties: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """`from`/`to` are node ids (`from` is a Python keyword: pass ``from_=`` or ``**{"from": ...}``)."""
        source = kwargs.pop("from", from_)
        if kwargs:
            raise InvalidInput(
                f"graph.create_relationship: unknown argument(s) {', '.join(kwargs)}"
            )
        if not source or not to:
            raise InvalidInput("graph.create_relationship needs from and to node ids")
        if not type or not isinstance(type, str):
            raise InvalidInput(
                "graph.create_relationship needs a relationship type, e.g. type='FOLLOWS'"
            )
        props = _props(properties)
        recorded = {"from": source, "to": to, "type": type, "properties": props}
        return self._run(
            graph,
            "create-relationship",
            recorded,
            _create_relationship,
            id,
            source,
            to,
            type,
            props,
        )

    @seed_style
    def delete_relationship(self, graph: str, id: str) -> Any:
        return self._run(graph, "delete-relationship", {"id": id}, _delete_relationship, id)

    @seed_style
    def query(self, graph: str, action: str, params: Mapping[str, Any] | None = None) -> Any:
        """Run the declared action `action` with `params`."""
        spec: GraphAction = self.config.event(
            "graphs", graph, self.config.graph(graph), action, attr="actions"
        )
        values = check_mapping(params, "params")
        return self._run(
            graph, action, {"action": action, "params": values}, _action, spec, action, values
        )

    @seed_style
    def execute(
        self,
        graph: str,
        action: str,
        input: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """The seed's "custom action" call: same as `query`, with the params given as `input`."""
        return self.query(
            graph, action, {**check_mapping(params, "params"), **check_mapping(input, "input")}
        )

    createNode = create_node
    updateNode = update_node
    deleteNode = delete_node
    getNode = get_node
    createRelationship = create_relationship
    deleteRelationship = delete_relationship


# -- argument checks --------------------------------------------------------------


def _labels(labels: Any) -> list[str]:
    if labels is None:
        return []
    if isinstance(labels, str):
        labels = [labels]
    if not isinstance(labels, (list, tuple)) or not all(
        isinstance(label, str) and label for label in labels
    ):
        raise InvalidInput(f"labels must be a list of strings, got {labels!r}")
    return list(dict.fromkeys(labels))


def _props(properties: Any) -> dict[str, Any]:
    props = check_mapping(properties, "properties")
    try:
        return json.loads(json.dumps(props, ensure_ascii=False))
    except (TypeError, ValueError):
        raise InvalidInput("properties must be JSON-serialisable") from None


# -- the storage engine ---------------------------------------------------------------


@contextmanager
def _open(path: Path) -> Iterator[sqlite3.Connection]:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    try:
        for statement in _SCHEMA:
            conn.execute(statement)
        yield conn
    finally:
        conn.close()


def _with_graph(path: Path, graph: str, fn: Any, *args: Any) -> Any:
    with _open(path) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn, graph, *args)
            conn.execute("COMMIT")
            return result
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _node(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": row[0], "labels": json.loads(row[1]), "properties": json.loads(row[2])}


def _rel(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "id": row[0],
        "type": row[1],
        "from": row[2],
        "to": row[3],
        "properties": json.loads(row[4]),
    }


def _load_node(conn: sqlite3.Connection, graph: str, node_id: Any) -> dict[str, Any]:
    row = conn.execute(
        "SELECT id, labels, properties FROM nodes WHERE id = ?", (str(node_id),)
    ).fetchone()
    if row is None:
        raise GraphError(f"graph {graph}: no node {node_id!r}")
    return _node(row)


def _create_node(
    conn: sqlite3.Connection,
    graph: str,
    node_id: str | None,
    labels: list[str],
    props: dict[str, Any],
) -> dict[str, Any]:
    node_id = node_id or "n_" + secrets.token_hex(8)
    try:
        conn.execute(
            "INSERT INTO nodes (id, labels, properties, created_at) VALUES (?, ?, ?, ?)",
            (node_id, json.dumps(labels), json.dumps(props, ensure_ascii=False), time.time()),
        )
    except sqlite3.IntegrityError:
        raise GraphError(f"graph {graph}: node {node_id!r} already exists") from None
    return {"id": node_id, "labels": labels, "properties": props}


def _update_node(
    conn: sqlite3.Connection,
    graph: str,
    node_id: str,
    props: dict[str, Any],
    labels: list[str] | None,
) -> dict[str, Any]:
    node = _load_node(conn, graph, node_id)
    merged = {**node["properties"], **props}
    merged = {k: v for k, v in merged.items() if v is not None}
    new_labels = node["labels"] if labels is None else labels
    conn.execute(
        "UPDATE nodes SET properties = ?, labels = ? WHERE id = ?",
        (json.dumps(merged, ensure_ascii=False), json.dumps(new_labels), node["id"]),
    )
    return {"id": node["id"], "labels": new_labels, "properties": merged}


def _delete_node(conn: sqlite3.Connection, graph: str, node_id: str) -> dict[str, Any]:
    removed = conn.execute(
        "DELETE FROM relationships WHERE from_id = ? OR to_id = ?", (str(node_id), str(node_id))
    ).rowcount
    deleted = conn.execute("DELETE FROM nodes WHERE id = ?", (str(node_id),)).rowcount == 1
    return {"id": node_id, "deleted": deleted, "relationships_deleted": removed}


def _get_node(conn: sqlite3.Connection, graph: str, node_id: str) -> dict[str, Any]:
    return _load_node(conn, graph, node_id)


def _create_relationship(
    conn: sqlite3.Connection,
    graph: str,
    rel_id: str | None,
    source: str,
    target: str,
    type_: str,
    props: dict[str, Any],
) -> dict[str, Any]:
    _load_node(conn, graph, source)
    _load_node(conn, graph, target)
    rel_id = rel_id or "r_" + secrets.token_hex(8)
    try:
        conn.execute(
            "INSERT INTO relationships (id, type, from_id, to_id, properties, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                rel_id,
                type_,
                str(source),
                str(target),
                json.dumps(props, ensure_ascii=False),
                time.time(),
            ),
        )
    except sqlite3.IntegrityError:
        raise GraphError(f"graph {graph}: relationship {rel_id!r} already exists") from None
    return {
        "id": rel_id,
        "type": type_,
        "from": str(source),
        "to": str(target),
        "properties": props,
    }


def _delete_relationship(conn: sqlite3.Connection, graph: str, rel_id: str) -> dict[str, Any]:
    deleted = conn.execute("DELETE FROM relationships WHERE id = ?", (str(rel_id),)).rowcount == 1
    return {"id": rel_id, "deleted": deleted}


def _edges(
    conn: sqlite3.Connection, node_id: str, direction: str, type_: str | None
) -> list[tuple[dict[str, Any], str]]:
    """(relationship, the node at its other end) for every edge touching `node_id`."""
    columns = "id, type, from_id, to_id, properties"
    type_clause, extra = (" AND type = ?", (type_,)) if type_ else ("", ())
    found: list[tuple[dict[str, Any], str]] = []
    if direction in ("out", "both"):
        for row in conn.execute(
            f"SELECT {columns} FROM relationships WHERE from_id = ?{type_clause} ORDER BY created_at, id",
            (node_id, *extra),
        ):
            found.append((_rel(row), row[3]))
    if direction in ("in", "both"):
        for row in conn.execute(
            f"SELECT {columns} FROM relationships WHERE to_id = ?{type_clause} ORDER BY created_at, id",
            (node_id, *extra),
        ):
            if direction == "both" and row[2] == row[3]:
                continue  # a self-loop was already seen going out
            found.append((_rel(row), row[2]))
    return found


def _param(
    spec: GraphAction,
    params: dict[str, Any],
    name: str,
    default: Any = None,
    *,
    required: bool = False,
    action: str = "",
) -> Any:
    caller_name = spec.params.get(name, name)
    if caller_name in params and params[caller_name] is not None:
        return params[caller_name]
    if name == "node" and "id" in params and "node" not in spec.params:
        return params["id"]
    if required:
        raise InvalidInput(f"graph action {action!r} needs params.{caller_name}")
    return default


def _action(
    conn: sqlite3.Connection, graph: str, spec: GraphAction, action: str, params: dict[str, Any]
) -> Any:
    if spec.kind == "neighbors":
        start = str(_param(spec, params, "node", required=True, action=action))
        depth = _int(_param(spec, params, "depth", spec.depth), "depth")
        direction = _param(spec, params, "direction", spec.direction)
        if direction not in ("out", "in", "both"):
            raise InvalidInput(f"direction must be out, in or both, got {direction!r}")
        return neighbors(
            conn,
            graph,
            start,
            depth,
            direction,
            _param(spec, params, "type", spec.type),
            _param(spec, params, "label", spec.label),
        )
    if spec.kind == "shortest_path":
        source = str(_param(spec, params, "from", required=True, action=action))
        target = str(_param(spec, params, "to", required=True, action=action))
        max_depth = _int(_param(spec, params, "max_depth", spec.max_depth), "max_depth")
        return shortest_path(
            conn,
            graph,
            source,
            target,
            spec.direction,
            _param(spec, params, "type", spec.type),
            max_depth,
        )
    if spec.kind == "nodes":
        label = _param(spec, params, "label", spec.label)
        wanted = check_mapping(_param(spec, params, "properties", {}), "properties")
        rows = conn.execute(
            "SELECT id, labels, properties FROM nodes ORDER BY created_at, id"
        ).fetchall()
        nodes = [_node(r) for r in rows]
        return [
            n
            for n in nodes
            if (label is None or label in n["labels"])
            and all(n["properties"].get(k) == v for k, v in wanted.items())
        ]
    try:
        cursor = conn.execute(
            spec.sql or "",
            {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in params.items()},
        )
    except sqlite3.Error as exc:
        raise GraphError(f"graph {graph} action {action}: {exc}") from None
    if cursor.description is None:
        return cursor.rowcount
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInput(f"{what} must be a positive integer, got {value!r}")
    return value


def neighbors(
    conn: sqlite3.Connection,
    graph: str,
    start: str,
    depth: int,
    direction: str,
    type_: str | None,
    label: str | None,
) -> dict[str, Any]:
    """Nodes within `depth` hops of `start` (breadth first), each with its distance."""
    origin = _load_node(conn, graph, start)
    distance = {start: 0}
    relationships: dict[str, dict[str, Any]] = {}
    frontier = [start]
    for hop in range(1, depth + 1):
        following = []
        for node_id in frontier:
            for rel, other in _edges(conn, node_id, direction, type_):
                relationships.setdefault(rel["id"], rel)
                if other not in distance:
                    distance[other] = hop
                    following.append(other)
        frontier = following
        if not frontier:
            break
    nodes = []
    for node_id, hops in distance.items():
        if node_id == start:
            continue
        node = _load_node(conn, graph, node_id)
        if label is None or label in node["labels"]:
            nodes.append({**node, "depth": hops})
    return {"node": origin, "nodes": nodes, "relationships": list(relationships.values())}


def shortest_path(
    conn: sqlite3.Connection,
    graph: str,
    source: str,
    target: str,
    direction: str,
    type_: str | None,
    max_depth: int,
) -> dict[str, Any]:
    """The fewest-hops path from `source` to `target` (breadth first), or ``found: False``."""
    _load_node(conn, graph, source)
    _load_node(conn, graph, target)
    came_from: dict[str, tuple[str, dict[str, Any]] | None] = {source: None}
    queue: deque[tuple[str, int]] = deque([(source, 0)])
    while queue and target not in came_from:
        node_id, hops = queue.popleft()
        if hops >= max_depth:
            continue
        for rel, other in _edges(conn, node_id, direction, type_):
            if other not in came_from:
                came_from[other] = (node_id, rel)
                queue.append((other, hops + 1))
    if target not in came_from:
        return {"found": False, "length": None, "nodes": [], "relationships": []}
    path_ids, rels = [target], []
    step = came_from[target]
    while step is not None:
        previous, rel = step
        rels.append(rel)
        path_ids.append(previous)
        step = came_from[previous]
    path_ids.reverse()
    rels.reverse()
    return {
        "found": True,
        "length": len(rels),
        "nodes": [_load_node(conn, graph, n) for n in path_ids],
        "relationships": rels,
    }
