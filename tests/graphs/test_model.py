"""The graph model: selectors, reads, true needs and the edges that need not be drawn."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from flowscope.graphs import GraphEdge, GraphError, GraphNode, WorkflowGraph, selectors_in


def n(node_id: str, node_type: str = "llm", parent: str | None = None, **config: Any) -> GraphNode:
    return GraphNode(node_id, node_type, node_id.title(), config, parent)


def chain(*nodes: GraphNode) -> WorkflowGraph:
    """The nodes drawn one after the other."""
    edges = [GraphEdge(a.id, b.id) for a, b in pairwise(nodes)]
    return WorkflowGraph.build(nodes, edges)


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("{{#a.text#}} and {{#b.x.y#}}", ["a", "b"]),
        ("{{#context#}} {{ jinja }} {{#sys.query#}}", ["sys"]),
        (["a", "text"], ["a"]),
        (["a"], []),  # one string is no selector
        ([["a", "x"], ["b", "y"]], ["a", "b"]),
        ({"v": [{"value_selector": ["c", "out"]}], "t": "{{#d.o#}}"}, ["c", "d"]),
        ([1, "text"], []),  # selectors are strings only
        (42, []),
    ],
)
def test_selectors_in(value: Any, found: list[str]) -> None:
    assert list(selectors_in(value)) == found


TEMPLATE = {"prompt_template": [{"role": "user", "text": "Improve {{#first.text#}}"}]}
ALONE = {"prompt_template": [{"role": "user", "text": "Write about {{#start.topic#}}"}]}


@pytest.mark.parametrize(
    ("second_config", "expected"),
    [
        (ALONE, False),
        (TEMPLATE, True),
        ({"context": {"variable_selector": ["first", "text"]}}, True),
    ],
)
def test_second_llm_depends_on_first_only_if_it_reads_it(
    second_config: dict[str, Any], expected: bool
) -> None:
    graph = chain(n("start", "start"), n("first", **ALONE), n("second", **second_config))
    assert graph.depends_on("second", "first") is expected
    assert (GraphEdge("first", "second") in graph.independent_edges()) is not expected


def test_node_after_a_branch_depends_on_it() -> None:
    graph = chain(n("start", "start"), n("check", "if-else"), n("after", **ALONE))
    assert graph.reads["after"] == {"start"}
    assert graph.true_needs("after") == {"start", "check"}
    assert graph.depends_on("after", "check")
    assert graph.independent_edges() == []  # from a start, from a branch: never independent


def test_unknown_config_depends_on_drawn_predecessors() -> None:
    unknown = GraphNode("legacy", "script", None, {}, config_known=False)
    graph = chain(n("start", "start"), n("first", **ALONE), unknown)
    assert graph.true_needs("legacy") == {"first"}
    assert graph.depends_on("legacy", "first")
    assert graph.depends_on("legacy", "start")  # through first's read
    assert GraphEdge("first", "legacy") not in graph.independent_edges()


def test_container_reads_what_its_children_read_from_outside() -> None:
    graph = WorkflowGraph.build(
        [
            n("src", "code"),
            n("other", "code"),
            n("it", "iteration", iterator_selector=["src", "items"], output_selector=["c", "t"]),
            n("c", "llm", "it", text="{{#it.item#}} {{#other.x#}} {{#sib.y#}}"),
            n("sib", "code", "it"),
        ],
        [GraphEdge("src", "it"), GraphEdge("other", "src")],
    )
    assert graph.reads["it"] == {"src", "other"}
    assert graph.reads["c"] == {"it", "other", "sib"}
    assert graph.readers("other") == ["it", "c"]
    assert graph.needs() == {"src": {"other"}, "other": frozenset(), "it": {"src"}}


def test_build_checks_ids_and_containers() -> None:
    with pytest.raises(GraphError, match="duplicate node id 'a'"):
        WorkflowGraph.build([n("a"), n("a")], [])
    with pytest.raises(GraphError, match="a node has an empty id"):
        WorkflowGraph.build([n("")], [])
    with pytest.raises(GraphError, match="refers to missing node 'z'"):
        WorkflowGraph.build([n("a")], [GraphEdge("a", "z")])
    # Two containers inside each other: refused rather than walked forever.
    with pytest.raises(GraphError, match="is inside itself"):
        WorkflowGraph.build([n("x", "loop", "y"), n("y", "iteration", "x")], [])


def test_a_fail_branch_decides_what_follows() -> None:
    """A node on the success edge of an http request with a fail branch waits for it, even
    without reading its output."""
    from flowscope.graphs.model import GraphEdge, GraphNode, WorkflowGraph

    def build(strategy: str | None) -> WorkflowGraph:
        config = {"method": "GET", **({"error_strategy": strategy} if strategy else {})}
        return WorkflowGraph.build(
            [
                GraphNode("api", "http-request", "API", config),
                GraphNode("next", "llm", "Next", {"text": "no reads"}),
            ],
            [GraphEdge("api", "next", "success-branch")],
        )

    assert build("fail-branch").depends_on("next", "api")
    assert build("fail-branch").independent_edges() == []
    assert not build("default-value").depends_on("next", "api")
    assert not build(None).depends_on("next", "api")
