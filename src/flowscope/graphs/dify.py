"""Dify app DSL exports (the YAML of "Export DSL") read into a `WorkflowGraph`.

Reads `version`, `kind`, `app.mode` and `workflow.graph.{nodes,edges}`; everything else
(features, dependencies, environment variables) does not change the graph. See
docs/dify-dsl.md for the keys each node type carries.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping
from typing import Any

import yaml

from flowscope.graphs.model import GraphEdge, GraphError, GraphNode, WorkflowGraph
from flowscope.graphs.neutral import ConfigBudget, check_size, plain_config

SUPPORTED_VERSIONS = "0.1.x to 0.6.x"
_MINORS = range(1, 7)
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_NOTE = "custom-note"
# Canvas layout React Flow may leave inside `data`: nothing the engine runs on.
_LAYOUT_KEYS = frozenset(
    {
        "selected",
        "height",
        "width",
        "position",
        "positionAbsolute",
        "sourcePosition",
        "targetPosition",
        "zIndex",
    }
)
_NO_WORKFLOW_MODES = {"chat": "chat", "agent-chat": "agent", "completion": "completion"}
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_dify_dsl(text: str | bytes) -> WorkflowGraph:
    """The graph of a Dify workflow or chatflow export; GraphError says why not."""
    doc = _load(text)
    if not isinstance(doc, Mapping):
        raise GraphError(f"a Dify DSL file must be a YAML mapping, not {type(doc).__name__}")
    kind = doc.get("kind")
    if kind is not None and kind != "app":
        raise GraphError(f"kind: expected 'app', got {_shown(kind)}")
    version = _version(doc.get("version"))
    raw_nodes, raw_edges = _graph_lists(doc)
    check_size(len(raw_nodes), len(raw_edges))

    # Ids first: selectors written with unquoted YAML ints need the set of ids to be fixed up.
    ids = frozenset(str(n["id"]) for n in raw_nodes if isinstance(n, Mapping) and "id" in n)
    budget = ConfigBudget()
    nodes: list[GraphNode] = []
    notes: set[str] = set()
    for i, raw in enumerate(raw_nodes):
        where = f"workflow.graph.nodes[{i}]"
        if not isinstance(raw, Mapping):
            raise GraphError(f"{where}: must be a mapping, not {type(raw).__name__}")
        node_id = _id(raw.get("id"), f"{where}.id")
        if raw.get("type") == _NOTE:
            notes.add(node_id)
            continue
        nodes.append(_node(raw, node_id, where, budget, ids))

    edges = []
    for i, raw in enumerate(raw_edges):
        where = f"workflow.graph.edges[{i}]"
        if not isinstance(raw, Mapping):
            raise GraphError(f"{where}: must be a mapping, not {type(raw).__name__}")
        source = _id(raw.get("source"), f"{where}.source")
        target = _id(raw.get("target"), f"{where}.target")
        if source in notes or target in notes:
            continue  # notes have no handles in Dify's editor; an edge to one means nothing
        handle = raw.get("sourceHandle")
        # "source" is the handle of every node with a single exit: no branch.
        branch = None if handle in (None, "", "source") else str(handle)
        edges.append(GraphEdge(source, target, branch))
    return WorkflowGraph.build(nodes, edges, format="dify-dsl", dsl_version=version)


MAX_ALIAS_NODES = 100_000
"""How many nodes YAML aliases (`*name`) may add to a document when expanded. A few kilobytes
of nested aliases ("billion laughs") expand to billions of values; real exports use few
aliases or none, so a file without them is bounded by the body size alone."""


def _load(text: str | bytes) -> Any:
    """The document, composed first (aliases stay shared nodes) and measured, then built."""
    loader = _Loader(text)  # a safe loader: plain data only
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_aliases(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = exc.problem or exc.context or "syntax error"
        raise GraphError(f"not valid YAML{where}: {reason}") from None
    except yaml.YAMLError as exc:  # e.g. bytes that are not UTF-8
        raise GraphError(f"not valid YAML: {exc}") from None
    except RecursionError:
        raise GraphError("not valid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def _check_aliases(root: yaml.Node) -> None:
    """Refuse a document whose aliases would add more than MAX_ALIAS_NODES nodes: each node's
    expanded size is computed once (by identity), so this costs one pass over the composed
    nodes whatever the expansion."""
    expanded: dict[int, int] = {}
    open_nodes: set[int] = set()  # being measured: met again below itself, it is recursive
    distinct = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in expanded:
            continue
        children = _children(node)
        if children and not children_done:
            if id(node) in open_nodes:
                raise GraphError("not valid YAML for a graph: an alias refers to itself")
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in expanded)
            continue
        open_nodes.discard(id(node))
        distinct += 1
        expanded[id(node)] = 1 + sum(expanded[id(child)] for child in children)
        if expanded[id(node)] - distinct > MAX_ALIAS_NODES:
            raise GraphError(
                f"YAML aliases expand to more than {MAX_ALIAS_NODES} extra values: "
                "export the app again without anchors"
            )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


DEFAULT_VERSION = "0.1.0"
"""The version of an export without a `version` key, as Dify itself reads it
(api/services/app_dsl_service.py: `data.get("version", "0.1.0")`)."""


def _version(raw: Any) -> str:
    if raw is None:
        return DEFAULT_VERSION
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise GraphError(f"version: must be a string like '0.1.5', not {_shown(raw)}")
    # An unquoted `version: 0.6` arrives as a float.
    version = str(raw)
    match = _VERSION.fullmatch(version)
    if match is None or int(match[1]) != 0 or int(match[2]) not in _MINORS:
        raise GraphError(
            f"unsupported DSL version {version!r}: this parser reads {SUPPORTED_VERSIONS}"
        )
    return version


def _graph_lists(doc: Mapping[str, Any]) -> tuple[list[Any], list[Any]]:
    workflow = doc.get("workflow")
    graph = workflow.get("graph") if isinstance(workflow, Mapping) else None
    if not isinstance(graph, Mapping):
        app = doc.get("app")
        mode = app.get("mode") if isinstance(app, Mapping) else None
        if mode in _NO_WORKFLOW_MODES:
            raise GraphError(
                f"this is a {_NO_WORKFLOW_MODES[mode]} app (mode {mode!r}) without a workflow: "
                "only workflow and chatflow (advanced-chat) apps have a graph"
            )
        raise GraphError("no workflow.graph: not a Dify workflow or chatflow export")
    nodes = graph.get("nodes")
    if not isinstance(nodes, list):
        raise GraphError("workflow.graph.nodes: must be a list")
    edges = graph.get("edges", [])
    if not isinstance(edges, list):
        raise GraphError("workflow.graph.edges: must be a list")
    return nodes, edges


def _node(
    raw: Mapping[str, Any], node_id: str, where: str, budget: ConfigBudget, ids: frozenset[str]
) -> GraphNode:
    data = raw.get("data")
    if not isinstance(data, Mapping):
        raise GraphError(f"{where} ({node_id!r}): no `data` mapping")
    node_type = data.get("type")
    if not isinstance(node_type, str) or not node_type:
        raise GraphError(f"{where} ({node_id!r}): no data.type")
    title = data.get("title")
    if title is not None and (isinstance(title, bool) or not isinstance(title, str | int | float)):
        raise GraphError(f"{where}.data.title ({node_id!r}): must be text, not {_shown(title)}")
    config = {k: v for k, v in data.items() if k not in _LAYOUT_KEYS}
    # Newer exports say `parentId`; 0.1.x children only carry iteration_id / loop_id in data.
    parent = next(
        (p for p in (raw.get("parentId"), data.get("iteration_id"), data.get("loop_id")) if p),
        None,
    )
    return GraphNode(
        id=node_id,
        type=node_type,
        title=None if title is None else str(title),
        config=plain_config(config, f"{where}.data", budget, ids),
        parent_id=None if parent is None else _id(parent, f"{where}.parentId"),
    )


def _id(raw: Any, where: str) -> str:
    """Ids as strings: an export may carry `1720000000000` unquoted, which YAML reads as int."""
    if isinstance(raw, bool) or not isinstance(raw, str | int) or raw == "":
        shown = "missing" if raw is None else _shown(raw)
        raise GraphError(f"{where}: must be a non-empty string or number, not {shown}")
    return str(raw)


def _shown(value: Any) -> str:
    """A value in an error message, cut short whatever its size."""
    return _REPR.repr(value)


_REPR = reprlib.Repr()  # Python 3.11 takes no limits in the constructor
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlist = _REPR.maxdict = 4
_REPR.maxlevel = 2
