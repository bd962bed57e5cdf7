"""The neutral JSON graph: reading it, round trips of to_json(), and strict refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from flowscope.graphs import GraphEdge, GraphError, WorkflowGraph, parse_dify_dsl, parse_json_graph
from flowscope.graphs.neutral import MAX_EDGES, MAX_NODES

FIXTURES = Path(__file__).parent / "fixtures"
REAL = FIXTURES / "real"


def pipeline() -> WorkflowGraph:
    return parse_json_graph(json.loads((FIXTURES / "neutral_pipeline.json").read_text()))


def every_fixture_graph() -> list[Any]:
    graphs = [pytest.param(pipeline, id="neutral_pipeline.json")]
    for path in sorted(FIXTURES.glob("dify_v*.yml")) + sorted(REAL.glob("*.yml")):
        graphs.append(pytest.param(lambda p=path: parse_dify_dsl(p.read_bytes()), id=path.name))
    return graphs


@pytest.mark.parametrize("make", every_fixture_graph())
def test_to_json_round_trip(make: Any) -> None:
    graph: WorkflowGraph = make()
    again = parse_json_graph(graph.to_json())
    assert again == graph
    assert again.reads == graph.reads
    assert (again.format, again.dsl_version) == (graph.format, graph.dsl_version)
    # And through real JSON bytes, as the store keeps it.
    assert parse_json_graph(orjson.loads(orjson.dumps(graph.to_json()))) == graph


def test_pipeline_fixture() -> None:
    graph = pipeline()
    assert (graph.format, graph.dsl_version) == ("json", None)
    assert graph.reads["outline"] == {"fetch"}
    assert graph.reads["fetch"] == {"input"}
    assert graph.nodes["publish"].title is None
    assert graph.edges[-1] == GraphEdge("legacy", "publish")  # "" handle: no branch


def test_node_without_config_needs_what_is_drawn_before_it() -> None:
    graph = pipeline()
    legacy = graph.nodes["legacy"]
    assert (legacy.config, legacy.config_known) == ({}, False)
    assert graph.nodes["tags"].config_known is True
    assert graph.true_needs("legacy") == {"tags"}
    assert graph.depends_on("legacy", "tags")
    assert not graph.depends_on("tags", "outline")  # known config, reads only the input
    independent = {(e.source, e.target) for e in graph.independent_edges()}
    assert independent == {("outline", "tags"), ("legacy", "publish")}


def test_children_and_dsl_provenance() -> None:
    graph = parse_json_graph(
        {
            "format": "dify-dsl",
            "dsl_version": "0.6.0",
            "nodes": [
                {"id": "it", "type": "iteration", "config": {"iterator_selector": ["src", "x"]}},
                {"id": "src", "type": "code", "config": {}},
                {"id": "c", "type": "llm", "parent_id": "it", "config": {"t": "{{#it.item#}}"}},
            ],
        }
    )
    assert (graph.format, graph.dsl_version) == ("dify-dsl", "0.6.0")
    assert graph.children("it") == ["c"]
    assert graph.edges == ()
    assert graph.reads["c"] == {"it"}
    assert graph.reads["it"] == {"src"}


def node(**fields: Any) -> dict[str, Any]:
    return {"id": "a", "type": "llm", **fields}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "a graph must be a JSON object, not a list"),
        ({}, "nodes: must be a list, not missing"),
        ({"nodes": {}}, "nodes: must be a list, not an object"),
        ({"nodes": [], "edges": None}, "edges: must be a list, not null"),
        ({"nodes": [], "links": []}, "graph: unknown key 'links'"),
        ({"nodes": [], "format": "yaml"}, "format: must be one of json, dify-dsl, not 'yaml'"),
        ({"nodes": [], "dsl_version": 1}, "dsl_version: must be a non-empty string or null"),
        ({"nodes": [1]}, "nodes[0]: must be an object, not a number"),
        (
            {"nodes": [node(), node(id="b"), node(id="c"), node(id="d", type="")]},
            "nodes[3].type: must be a non-empty string, not ''",
        ),
        ({"nodes": [{"id": "a"}]}, "nodes[0].type: must be a non-empty string, not missing"),
        ({"nodes": [node(id=5)]}, "nodes[0].id: must be a non-empty string, not a number"),
        ({"nodes": [node(), node()]}, "nodes[1].id: duplicate id 'a'"),
        ({"nodes": [node(config=[])]}, "nodes[0].config: must be an object, not a list"),
        ({"nodes": [node(config=None)]}, "nodes[0].config: must be an object, not null"),
        ({"nodes": [node(title=3)]}, "nodes[0].title: must be a string or null, not a number"),
        ({"nodes": [node(parent_id="")]}, "nodes[0].parent_id: must be a non-empty string or null"),
        ({"nodes": [node(parent_id="x")]}, "nodes[0].parent_id: refers to missing node 'x'"),
        ({"nodes": [node(parent_id="a")]}, "node 'a' is inside itself"),
        ({"nodes": [node(parentId="x")]}, "nodes[0]: unknown key 'parentId'"),
        (
            {"nodes": [node(config={"k": {1, 2}})]},
            "nodes[0].config.k: unsupported value of type set",
        ),
        (
            {
                "nodes": [node()],
                "edges": [{"source": "a", "target": "a"}, {"source": "a", "target": "x"}],
            },
            "edges[1]: refers to missing node 'x'",
        ),
        (
            {"nodes": [node()], "edges": [{"target": "a"}]},
            "edges[0].source: must be a non-empty string, not missing",
        ),
        ({"nodes": [node()], "edges": ["a->a"]}, "edges[0]: must be an object, not a string"),
        (
            {"nodes": [node()], "edges": [{"source": "a", "target": "a", "source_handle": 1}]},
            "edges[0].source_handle: must be a string or null, not a number",
        ),
        (
            {"nodes": [node()], "edges": [{"source": "a", "target": "a", "branch": "x"}]},
            "edges[0]: unknown key 'branch'",
        ),
    ],
)
def test_refusals(data: Any, message: str) -> None:
    with pytest.raises(GraphError) as caught:
        parse_json_graph(data)
    assert message in str(caught.value)


def test_config_nested_too_deep() -> None:
    config: dict[str, Any] = {}
    inner = config
    for _ in range(100):
        inner["k"] = {}
        inner = inner["k"]
    with pytest.raises(GraphError, match=r"nodes\[0\]\.config\.k\.k.*nested deeper than 64"):
        parse_json_graph({"nodes": [node(config=config)]})


@pytest.mark.parametrize(
    ("nodes", "edges", "message"),
    [
        (MAX_NODES + 1, 0, f"too many nodes: {MAX_NODES + 1} (at most {MAX_NODES})"),
        (1, MAX_EDGES + 1, f"too many edges: {MAX_EDGES + 1} (at most {MAX_EDGES})"),
    ],
)
def test_size_limits(nodes: int, edges: int, message: str) -> None:
    data = {
        "nodes": [{"id": f"n{i}", "type": "code"} for i in range(nodes)],
        "edges": [{"source": "n0", "target": "n0"}] * edges,
    }
    with pytest.raises(GraphError) as caught:
        parse_json_graph(data)
    assert str(caught.value) == message


def test_largest_allowed_graph() -> None:
    data = {
        "nodes": [{"id": f"n{i}", "type": "code", "config": {}} for i in range(MAX_NODES)],
        "edges": [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(MAX_NODES - 1)],
    }
    assert len(parse_json_graph(data).nodes) == MAX_NODES
