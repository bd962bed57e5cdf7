"""The neutral JSON graph: any engine's workflow as plain nodes and edges.

    {"nodes": [{"id": "a", "type": "llm", "title": "Draft", "config": {...}},
               {"id": "b", "type": "llm", "parent_id": "loop1"}],
     "edges": [{"source": "a", "target": "b", "source_handle": "true"}]}

A node given without `config` has unknown reads: the advisor then assumes it needs everything
drawn before it. `WorkflowGraph.to_json()` output (with `format` and `dsl_version`) reads back
into an equal graph.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from typing import Any

from flowscope.graphs.model import GraphEdge, GraphError, GraphNode, WorkflowGraph

MAX_NODES = 2000
MAX_EDGES = 10000
MAX_CONFIG_DEPTH = 64
# Bounds the work of copying configs: YAML aliases can make a small file expand into an
# exponentially large tree, and every later walk (reads, JSON) would pay for it again.
MAX_CONFIG_VALUES = 200_000
FORMATS = ("json", "dify-dsl")

_TOP_KEYS = frozenset({"nodes", "edges", "format", "dsl_version"})
_NODE_KEYS = frozenset({"id", "type", "title", "config", "parent_id"})
_EDGE_KEYS = frozenset({"source", "target", "source_handle"})


def parse_json_graph(data: Any) -> WorkflowGraph:
    """A graph from decoded JSON; GraphError names the first bad place (`nodes[3].type`)."""
    if not isinstance(data, Mapping):
        raise GraphError(f"a graph must be a JSON object, not {_kind(data)}")
    _no_unknown_keys(data, _TOP_KEYS, "graph")
    raw_nodes = _list(data, "nodes", required=True)
    raw_edges = _list(data, "edges", required=False)
    check_size(len(raw_nodes), len(raw_edges))
    graph_format = data.get("format", "json")
    if graph_format not in FORMATS:
        raise GraphError(f"format: must be one of {', '.join(FORMATS)}, not {graph_format!r}")
    dsl_version = _optional_str(data, "dsl_version", "dsl_version")

    budget = ConfigBudget()
    nodes: dict[str, GraphNode] = {}
    for i, raw in enumerate(raw_nodes):
        node = _node(raw, f"nodes[{i}]", budget)
        if node.id in nodes:
            raise GraphError(f"nodes[{i}].id: duplicate id {node.id!r}")
        nodes[node.id] = node
    for i, node in enumerate(nodes.values()):
        if node.parent_id is not None and node.parent_id not in nodes:
            raise GraphError(f"nodes[{i}].parent_id: refers to missing node {node.parent_id!r}")
    edges = []
    for i, raw in enumerate(raw_edges):
        edge = _edge(raw, f"edges[{i}]")
        for end in (edge.source, edge.target):
            if end not in nodes:
                raise GraphError(f"edges[{i}]: refers to missing node {end!r}")
        edges.append(edge)
    return WorkflowGraph.build(nodes.values(), edges, format=graph_format, dsl_version=dsl_version)


def check_size(nodes: int, edges: int) -> None:
    """Refuse graphs larger than any real workflow, before spending work on them."""
    if nodes > MAX_NODES:
        raise GraphError(f"too many nodes: {nodes} (at most {MAX_NODES})")
    if edges > MAX_EDGES:
        raise GraphError(f"too many edges: {edges} (at most {MAX_EDGES})")


class ConfigBudget:
    """How many config values may still be copied, shared by every node of one graph."""

    def __init__(self, values: int = MAX_CONFIG_VALUES) -> None:
        self.left = values

    def spend(self, where: str) -> None:
        self.left -= 1
        if self.left < 0:
            raise GraphError(f"{where}: configs too large (over {MAX_CONFIG_VALUES} values)")


def plain_config(
    value: Any,
    where: str,
    budget: ConfigBudget | None = None,
    node_ids: frozenset[str] = frozenset(),
) -> Any:
    """A JSON-safe copy of a config value (string keys, no dates, no NaN), so the graph
    survives storage as JSON unchanged. With `node_ids`, selectors whose node id came as a
    YAML int (`[1720, text]`) get it as a string, as everywhere else in the graph."""
    return _plain(value, where, budget or ConfigBudget(), node_ids, 0)


def _plain(value: Any, where: str, budget: ConfigBudget, ids: frozenset[str], depth: int) -> Any:
    budget.spend(where)
    if depth > MAX_CONFIG_DEPTH:
        raise GraphError(f"{where}: nested deeper than {MAX_CONFIG_DEPTH} levels")
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime.date):  # YAML reads `2024-07-01` as a date
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}", budget, ids, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_plain(v, f"{where}[{i}]", budget, ids, depth + 1) for i, v in enumerate(value)]
        if (
            ids
            and len(items) >= 2
            and isinstance(items[0], int)
            and not isinstance(items[0], bool)
            and str(items[0]) in ids
            and all(isinstance(v, str) for v in items[1:])
        ):
            items[0] = str(items[0])
        return items
    raise GraphError(f"{where}: unsupported value of type {type(value).__name__}")


def _node(raw: Any, where: str, budget: ConfigBudget) -> GraphNode:
    if not isinstance(raw, Mapping):
        raise GraphError(f"{where}: must be an object, not {_kind(raw)}")
    _no_unknown_keys(raw, _NODE_KEYS, where)
    node_id = _required_str(raw, "id", where)
    node_type = _required_str(raw, "type", where)
    title = _optional_str(raw, "title", f"{where}.title", allow_empty=True)
    parent_id = _optional_str(raw, "parent_id", f"{where}.parent_id")
    if "config" not in raw:
        return GraphNode(node_id, node_type, title, {}, parent_id, config_known=False)
    config = raw["config"]
    if not isinstance(config, Mapping):
        raise GraphError(f"{where}.config: must be an object, not {_kind(config)}")
    copied = plain_config(config, f"{where}.config", budget)
    return GraphNode(node_id, node_type, title, copied, parent_id)


def _edge(raw: Any, where: str) -> GraphEdge:
    if not isinstance(raw, Mapping):
        raise GraphError(f"{where}: must be an object, not {_kind(raw)}")
    _no_unknown_keys(raw, _EDGE_KEYS, where)
    source = _required_str(raw, "source", where)
    target = _required_str(raw, "target", where)
    # An empty handle means "no branch", as in to_json(), which leaves it out.
    handle = _optional_str(raw, "source_handle", f"{where}.source_handle", allow_empty=True)
    return GraphEdge(source, target, handle or None)


def _list(data: Mapping[str, Any], key: str, *, required: bool) -> list[Any]:
    if key not in data and not required:
        return []
    value = data.get(key)
    if not isinstance(value, list):
        raise GraphError(f"{key}: must be a list, not {_kind(value) if key in data else 'missing'}")
    return value


def _required_str(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise GraphError(f"{where}.{key}: must be a non-empty string, not {_describe(raw, key)}")
    return value


def _optional_str(
    raw: Mapping[str, Any], key: str, where: str, *, allow_empty: bool = False
) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not (value or allow_empty):
        kind = "a string" if allow_empty else "a non-empty string"
        raise GraphError(f"{where}: must be {kind} or null, not {_describe(raw, key)}")
    return value


def _no_unknown_keys(raw: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise GraphError(
            f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _describe(raw: Mapping[str, Any], key: str) -> str:
    if key not in raw:
        return "missing"
    value = raw[key]
    return repr(value) if value == "" else _kind(value)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    for python_type, name in names.items():
        if isinstance(value, python_type):
            return name
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__
