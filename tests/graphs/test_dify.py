"""Dify DSL exports: hand-written fixtures of both shapes, real exports, and every refusal."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flowscope.graphs import GraphEdge, GraphError, WorkflowGraph, parse_dify_dsl

FIXTURES = Path(__file__).parent / "fixtures"
REAL = Path(__file__).resolve().parent / "fixtures" / "real"
START = "1711000000001"  # the 0.1.x fixture's start node, an unquoted YAML int there


def load(name: str) -> WorkflowGraph:
    return parse_dify_dsl((FIXTURES / name).read_text())


@pytest.fixture(scope="module")
def v01() -> WorkflowGraph:
    return load("dify_v01_research.yml")


@pytest.fixture(scope="module")
def v06() -> WorkflowGraph:
    return load("dify_v06_support.yml")


@pytest.mark.parametrize(
    ("name", "version", "nodes", "edges"),
    [("dify_v01_research.yml", "0.1.3", 13, 12), ("dify_v06_support.yml", "0.6.0", 20, 17)],
)
def test_own_fixtures_parse(name: str, version: str, nodes: int, edges: int) -> None:
    graph = load(name)
    assert (graph.format, graph.dsl_version) == ("dify-dsl", version)
    assert (len(graph.nodes), len(graph.edges)) == (nodes, edges)
    assert not any(n.type == "" for n in graph.nodes.values())  # the notes are gone


def test_notes_are_skipped(v01: WorkflowGraph, v06: WorkflowGraph) -> None:
    assert "note1" not in v01.nodes
    assert "1745000000999" not in v06.nodes


def test_int_ids_become_strings(v01: WorkflowGraph) -> None:
    assert v01.nodes[START].type == "start"
    assert v01.edges[0] == GraphEdge(START, "retrieval")
    # The if-else names the start node as `[1711000000001, country]`: still a read of it.
    assert v01.reads["check_country"] == {START}


@pytest.mark.parametrize(
    ("fixture", "node", "parent"),
    [
        ("v01", "polish", "per_item"),  # 0.1.x: data.iteration_id only
        ("v01", "per_item", None),
        ("v06", "each_ticketstart", "each_ticket"),  # parentId, no iteration_id
        ("v06", "summarize_ticket", "each_ticket"),
        ("v06", "recheckstart", "recheck"),
        ("v06", "check_code", "recheck"),  # parentId and data.loop_id agree
        ("v06", "format", None),
    ],
)
def test_children_know_their_container(
    fixture: str, node: str, parent: str | None, request: pytest.FixtureRequest
) -> None:
    graph: WorkflowGraph = request.getfixturevalue(fixture)
    assert graph.nodes[node].parent_id == parent


def test_container_children(v06: WorkflowGraph) -> None:
    assert v06.children("each_ticket") == ["each_ticketstart", "summarize_ticket"]
    assert v06.children("recheck") == ["recheckstart", "check_code"]
    assert "summarize_ticket" not in v06.top_level()


@pytest.mark.parametrize(
    ("fixture", "node", "reads"),
    [
        ("v01", "retrieval", {START}),  # query_variable_selector
        ("v01", "summarize", {START, "retrieval"}),  # context selector and {{#retrieval.result#}}
        ("v01", "keywords", {START}),
        ("v01", "merge", {"translate_local", "translate_default"}),  # variables: [[node, var]]
        ("v01", "splitter", {"merge"}),  # code variables' value_selector
        # The child reads Summarize from outside: the iteration reads it too.
        ("v01", "per_item", {"splitter", "summarize"}),
        ("v01", "polish", {"per_item", "summarize"}),
        ("v01", "end", {"report", "keywords"}),
        ("v06", "classify", set()),  # [sys, query] names no node
        ("v06", "answer_llm", {"kb", "start"}),
        ("v06", "status_api", {"start"}),  # a template inside the url
        ("v06", "lookup", {"status_api"}),  # tool_parameters
        # output_selector names its own child: no self-read.
        ("v06", "each_ticket", {"lookup", "classify"}),
        ("v06", "summarize_ticket", {"each_ticket", "classify"}),
        ("v06", "recheck", {"each_ticket"}),  # break_conditions name its own child
        ("v06", "format", {"classify", "each_ticket"}),  # template and variables
        ("v06", "is_urgent", {"format"}),  # cases[].conditions[].variable_selector
        ("v06", "other_reply", set()),
    ],
)
def test_reads(fixture: str, node: str, reads: set[str], request: pytest.FixtureRequest) -> None:
    graph: WorkflowGraph = request.getfixturevalue(fixture)
    assert graph.reads[node] == reads


@pytest.mark.parametrize(
    ("fixture", "node", "other", "expected"),
    [
        # Drawn one after the other, but Keywords reads only the question.
        ("v01", "keywords", "summarize", False),
        # Same chain, the translation reads {{#summarize.text#}}.
        ("v01", "translate_default", "summarize", True),
        ("v01", "translate_default", "check_country", True),  # after an if-else: control
        ("v01", "translate_default", "keywords", False),
        ("v01", "report", "summarize", True),  # through the iteration's child
        ("v06", "escalate", "is_urgent", True),
        ("v06", "kb", "classify", True),  # after a question-classifier: control
        ("v06", "format", "recheck", False),
        ("v06", "recheck", "each_ticket", True),
    ],
)
def test_depends_on(
    fixture: str, node: str, other: str, expected: bool, request: pytest.FixtureRequest
) -> None:
    graph: WorkflowGraph = request.getfixturevalue(fixture)
    assert graph.depends_on(node, other) is expected


def test_independent_edges(v01: WorkflowGraph, v06: WorkflowGraph) -> None:
    found = {(e.source, e.target) for e in v01.independent_edges()}
    assert found == {("summarize", "keywords"), ("keywords", "check_country")}
    assert {(e.source, e.target) for e in v06.independent_edges()} == {("recheck", "format")}


def test_branch_handles(v01: WorkflowGraph, v06: WorkflowGraph) -> None:
    handles = {(e.source, e.target): e.source_handle for e in v06.edges}
    assert handles[("classify", "kb")] == "1"
    assert handles[("classify", "status_api")] == "2"  # an unquoted int in the file
    assert handles[("classify", "other_reply")] == "1745000000123"
    assert handles[("status_api", "api_down")] == "fail-branch"
    assert handles[("status_api", "lookup")] is None  # Dify's default "source" handle
    assert {e.source_handle for e in v01.edges if e.source == "check_country"} == {"true", "false"}


def test_config_keeps_data_without_layout(v01: WorkflowGraph, v06: WorkflowGraph) -> None:
    polish = v01.nodes["polish"].config
    assert "selected" not in polish
    assert polish["desc"] == ""
    assert polish["iteration_id"] == "per_item"
    assert polish["model"]["provider"] == "openai"
    iteration = v06.nodes["each_ticket"].config
    assert "width" not in iteration and "height" not in iteration
    assert (iteration["is_parallel"], iteration["parallel_nums"]) == (False, 10)
    assert iteration["error_handle_mode"] == "terminated"
    http = v06.nodes["status_api"].config
    assert http["retry_config"] == {"retry_enabled": True, "max_retries": 3, "retry_interval": 100}
    assert http["error_strategy"] == "fail-branch"
    assert "retry_config" not in v06.nodes["lookup"].config
    llm = v06.nodes["answer_llm"].config
    assert llm["model"]["provider"] == "langgenius/openai/openai"
    assert llm["model"]["completion_params"]["temperature"] == 0.7
    assert v06.nodes["recheck"].config["loop_count"] == 3
    assert v06.nodes["answer_llm"].title == "Billing answer"


def test_bytes_input() -> None:
    data = (FIXTURES / "dify_v06_support.yml").read_bytes()
    assert parse_dify_dsl(data) == load("dify_v06_support.yml")


def dsl(body: str, version: str = "0.1.5") -> str:
    """A workflow export around a `graph:` body given as indented YAML."""
    graph = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    return f"app: {{mode: workflow, name: t}}\nkind: app\nversion: {version}\nworkflow:\n  graph:\n{graph}\n"


TWO_NODES = """
nodes:
- {id: a, type: custom, data: {type: start, title: A}}
- {id: b, type: custom, data: {type: end, title: B, outputs: []}}
- {id: n, type: custom-note, data: {type: '', title: ''}}
edges:
- {source: a, target: b, sourceHandle: source}
- {source: n, target: b, sourceHandle: source}
"""


def _alias_bomb(levels: int) -> str:
    """Nested anchors, nine aliases per level ("billion laughs"): 9**levels values when
    expanded, from a few hundred bytes; the last level is a node's title."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    graph = f"nodes:\n- {{id: a, type: custom, data: {{type: start, title: *a{levels - 1}}}}}\nedges: []"
    return "\n".join(lines) + "\n" + dsl(graph)


# Six levels (531,441 values) stays small enough to show the old parser accepting it; the
# issue's nine (387 million) got a server OOM-killed.
ALIAS_BOMB = _alias_bomb(6)


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0", "0.3.1", "0.4.0", "0.5.0", "0.6.12", "0.6"])
def test_supported_versions(version: str) -> None:
    graph = parse_dify_dsl(dsl(TWO_NODES, version))
    assert graph.dsl_version == version
    assert graph.edges == (GraphEdge("a", "b"),)  # the edge from the note is dropped


def test_yaml_dates_and_nan_stay_json_safe() -> None:
    body = TWO_NODES.replace("outputs: []", "outputs: [], since: 2024-07-01, ratio: .nan")
    config = parse_dify_dsl(dsl(body)).nodes["b"].config
    assert (config["since"], config["ratio"]) == ("2024-07-01", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app: {mode: workflow\nversion: 0.1.0\n", "not valid YAML at line 2"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        (dsl(TWO_NODES, "1.0.0"), "unsupported DSL version '1.0.0'"),
        (dsl(TWO_NODES, "0.7.0"), "reads 0.1.x to 0.6.x"),
        (dsl(TWO_NODES, "0.0.9"), "unsupported DSL version '0.0.9'"),
        (dsl(TWO_NODES, "latest"), "unsupported DSL version 'latest'"),
        (dsl(TWO_NODES, "[0.1, 0.2]"), "version: must be a string like"),
        (dsl(TWO_NODES.replace("title: A", "title: [1, 2]")), "data.title ('a'): must be text"),
        ("kind: [" + ", ".join(["x" * 100] * 1000) + "]\n", "kind: expected 'app', got ['xx"),
        ("a: &a [1, *a]\nversion: 0.1.5\n", "an alias refers to itself"),
        (ALIAS_BOMB, "YAML aliases expand to more than 100000 extra values"),
        (dsl(TWO_NODES).replace("kind: app", "kind: dataset"), "kind: expected 'app'"),
        ("kind: app\nversion: 0.1.0\napp: {mode: workflow}\n", "no workflow.graph"),
        (dsl("nodes: {a: 1}"), "workflow.graph.nodes: must be a list"),
        (dsl(TWO_NODES.replace("{id: b, ", "{")), "workflow.graph.nodes[1].id: must be"),
        (dsl(TWO_NODES.replace("type: end, ", "")), "workflow.graph.nodes[1] ('b'): no data.type"),
        (
            dsl(TWO_NODES.replace("target: b, sourceHandle: source}", "target: c}", 1)),
            "edge 'a' -> 'c' refers to missing node 'c'",
        ),
        (dsl(TWO_NODES.replace("{id: b,", "{id: a,")), "duplicate node id 'a'"),
        (dsl(TWO_NODES.replace("{id: b,", "{id: b, parentId: b,")), "inside itself"),
        (
            dsl(TWO_NODES.replace("{id: b,", "{id: b, parentId: loop9,")),
            "missing container 'loop9'",
        ),
    ],
)
def test_refusals(text: str, message: str) -> None:
    with pytest.raises(GraphError) as caught:
        parse_dify_dsl(text)
    assert message in str(caught.value)
    assert len(str(caught.value)) < 500  # whatever the size of what was refused


def test_an_export_without_version_is_read_as_dify_reads_it() -> None:
    """Dify's AppDslService imports a DSL without `version` as 0.1.0."""
    graph = parse_dify_dsl(dsl(TWO_NODES).replace("version: 0.1.5\n", ""))
    assert graph.dsl_version == "0.1.0" and set(graph.nodes) == {"a", "b"}


def test_a_few_aliases_are_fine() -> None:
    shared = TWO_NODES.replace("outputs: []", "outputs: &out [{variable: x}], again: *out")
    config = parse_dify_dsl(dsl(shared)).nodes["b"].config
    assert config["outputs"] == config["again"] == [{"variable": "x"}]


def test_chat_app_without_workflow() -> None:
    with pytest.raises(GraphError, match=r"chat app \(mode 'chat'\) without a workflow"):
        load("dify_chat_app.yml")


def test_yaml_alias_bomb_is_refused() -> None:
    # Ten levels of ten aliases: a few hundred bytes that expand to 10**10 values.
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    body = TWO_NODES.replace("outputs: []", "outputs: [], bomb: *l9")
    with pytest.raises(GraphError, match="YAML aliases expand to more than"):
        parse_dify_dsl("\n".join(lines) + "\n" + dsl(body))


# The real exports (svcvit/Awesome-Dify-Workflow, MIT): file, version, nodes without notes, edges.
REAL_EXPORTS = [
    ("svcvit_deep_researcher_on_dify.yml", "0.1.5", 57, 53),
    ("svcvit_claude3_code_translation.yml", "0.1.2", 9, 7),
    ("svcvit_simple_kimi.yml", "0.1.2", 38, 40),
    ("svcvit_runLLMCode.yml", "0.1.4", 8, 7),
    ("svcvit_translation_workflow.yml", "0.1.0", 8, 8),
    ("svcvit_document_chat_template.yml", "0.1.0", 23, 22),
]


def real(name: str) -> WorkflowGraph:
    return parse_dify_dsl((REAL / name).read_bytes())


@pytest.mark.parametrize(("name", "version", "nodes", "edges"), REAL_EXPORTS)
def test_real_exports_parse(name: str, version: str, nodes: int, edges: int) -> None:
    graph = real(name)
    assert graph.dsl_version == version
    assert (len(graph.nodes), len(graph.edges)) == (nodes, edges)


def test_real_translation_workflow() -> None:
    graph = real("svcvit_translation_workflow.yml")
    start, translate, check = "1721117927142", "1721117961155", "1721118545228"
    assert graph.nodes[translate].type == "llm"
    assert graph.reads["1721118847307"] == {"1721118559807", "1721118668192"}  # the aggregator
    assert graph.reads[check] == {start}
    # The if-else is drawn after the first translation but only looks at the input.
    assert [(e.source, e.target) for e in graph.independent_edges()] == [(translate, check)]
    assert graph.depends_on("1721118559807", check)


def test_real_iteration_export() -> None:
    graph = real("svcvit_claude3_code_translation.yml")
    iteration, child = "1720580108806", "1720580171037"
    assert graph.nodes[iteration].type == "iteration"
    assert graph.children(iteration) == [child, "1720580108806start0"]
    assert graph.reads[child] == {"1720505581749", "1720506191043", iteration}
    assert iteration not in graph.reads[iteration]
    assert graph.reads[iteration] == {"1720505581749", "1720506191043", "1720508367130"}


def test_real_classifier_handles() -> None:
    graph = real("svcvit_document_chat_template.yml")
    handles = {e.source_handle for e in graph.edges if e.source == "1720795163496"}
    assert handles == {"1", "2", "1720796069925", "1720839653345"}
    assert graph.depends_on("1720800425522", "1720795163496")  # retrieval after the classifier
