"""Workflow graphs: Dify DSL and neutral JSON parsed into one model the advisor reads."""

from flowscope.graphs.dify import parse_dify_dsl
from flowscope.graphs.model import GraphEdge, GraphError, GraphNode, WorkflowGraph, selectors_in
from flowscope.graphs.neutral import parse_json_graph

__all__ = [
    "GraphEdge",
    "GraphError",
    "GraphNode",
    "WorkflowGraph",
    "parse_dify_dsl",
    "parse_json_graph",
    "selectors_in",
]
