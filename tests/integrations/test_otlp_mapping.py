"""The trace-to-run mapping, on decoded span records (no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from flowscope.integrations.otlp_decode import BadPayload, decode
from flowscope.integrations.otlp_mapping import map_trace
from tests.integrations.otlp_payloads import new_span_id, new_trace_id, request, span


def records(*spans: dict[str, Any], service: str = "support-bot") -> list[dict[str, Any]]:
    decoded = decode(orjson.dumps(request(list(spans), service)), json=True)
    assert decoded.rejected == 0, decoded.errors
    return decoded.spans


def test_root_span_is_the_run_and_descendants_its_nodes() -> None:
    t, root, llm, tool = new_trace_id(), new_span_id(), new_span_id(), new_span_id()
    run = map_trace(
        records(
            span(t, root, "answer-question", 0, 900),
            span(
                t,
                llm,
                "chat gpt-4o",
                10,
                400,
                parent=root,
                gen_ai__operation__name="chat",
                gen_ai__request__model="gpt-4o",
                gen_ai__response__model="gpt-4o-2024-08-06",
                gen_ai__provider__name="openai",
                gen_ai__usage__input_tokens=120,
                gen_ai__usage__output_tokens=30,
            ),
            span(t, tool, "search", 410, 800, parent=root, gen_ai__tool__name="search"),
        )
    )
    assert run is not None
    assert (run["id"], run["app_id"], run["workflow_id"]) == (t, "support-bot", "answer-question")
    assert run["status"] == "succeeded"
    assert run["started_at"] == datetime(2026, 1, 1, tzinfo=UTC)
    nodes = {n["id"]: n for n in run["node_executions"]}
    assert set(nodes) == {llm, tool}
    chat = nodes[llm]
    assert (chat["node_type"], chat["model_name"], chat["model_provider"]) == (
        "llm",
        "gpt-4o-2024-08-06",
        "openai",
    )
    assert (chat["prompt_tokens"], chat["completion_tokens"], chat["total_tokens"]) == (
        120,
        30,
        150,
    )
    assert chat["index"] == 1 and nodes[tool]["index"] == 2
    assert nodes[tool]["node_type"] == "tool"
    assert nodes[tool]["predecessor_node_id"] == "chat gpt-4o"
    assert chat["predecessor_node_id"] is None
    assert chat["parent_id"] is None  # its parent is the run span


def test_trace_without_its_root_waits() -> None:
    t, root = new_trace_id(), new_span_id()
    assert map_trace(records(span(t, new_span_id(), "child", 1, 2, parent=root))) is None


def test_the_root_is_the_run_and_a_workflow_span_below_it_names_the_workflow() -> None:
    t, http, workflow, child = new_trace_id(), new_span_id(), new_span_id(), new_span_id()
    run = map_trace(
        records(
            span(t, http, "POST /run", 0, 100, http__request__method="POST"),
            span(
                t,
                workflow,
                "invoke_workflow triage",
                5,
                95,
                parent=http,
                gen_ai__operation__name="invoke_workflow",
                gen_ai__workflow__name="triage",
            ),
            span(t, child, "classify", 6, 50, parent=workflow, gen_ai__operation__name="chat"),
        )
    )
    assert run is not None
    assert (run["id"], run["workflow_id"]) == (t, "triage")
    nodes = {n["id"]: n for n in run["node_executions"]}
    assert set(nodes) == {workflow, child}  # nothing under the root is lost
    assert nodes[workflow]["node_type"] == "workflow"
    assert nodes[child]["parent_id"] == workflow
    assert nodes[child]["node_id"] == "invoke_workflow triage/classify"


def test_an_openinference_chain_below_a_plain_root_is_a_node_of_the_root() -> None:
    t, http, chain, retriever, llm = (new_trace_id(), *(new_span_id() for _ in range(4)))
    run = map_trace(
        records(
            span(t, http, "POST /chat", 0, 100),
            span(
                t,
                chain,
                "rag",
                2,
                98,
                parent=http,
                openinference__span__kind="CHAIN",
                flowscope__app_id="kb-app",
            ),
            span(
                t, retriever, "retrieve", 3, 20, parent=chain, openinference__span__kind="RETRIEVER"
            ),
            span(
                t,
                llm,
                "ChatOpenAI",
                21,
                90,
                parent=chain,
                openinference__span__kind="LLM",
                llm__model_name="gpt-4o-mini",
                llm__provider="openai",
                llm__token_count__prompt=200,
                llm__token_count__completion=50,
                llm__token_count__total=250,
                llm__cost__total=0.00006,
            ),
        )
    )
    assert run is not None
    assert (run["app_id"], run["workflow_id"]) == ("support-bot", "POST /chat")
    nodes = {n["id"]: n for n in run["node_executions"]}
    assert nodes[chain]["node_type"] == "chain"
    assert (nodes[retriever]["node_id"], nodes[llm]["node_id"]) == (
        "rag/retrieve",
        "rag/ChatOpenAI",
    )
    assert nodes[retriever]["node_type"] == "knowledge-retrieval"
    assert nodes[llm]["node_type"] == "llm"
    assert nodes[llm]["cost"] == pytest.approx(0.00006)
    assert (nodes[llm]["prompt_tokens"], nodes[llm]["total_tokens"]) == (200, 250)
    assert nodes[llm]["predecessor_node_id"] == "rag/retrieve"


def test_error_status_fails_the_node_and_marks_the_run_partial() -> None:
    t, root, bad = new_trace_id(), new_span_id(), new_span_id()
    run = map_trace(
        records(
            span(t, root, "wf", 0, 10),
            span(t, bad, "fetch", 1, 5, parent=root, error="HTTP 502 from upstream"),
        )
    )
    assert run is not None
    assert run["status"] == "partial-succeeded"
    (node,) = run["node_executions"]
    assert (node["status"], node["error"]) == ("failed", "HTTP 502 from upstream")
    failed = map_trace(records(span(t, root, "wf", 0, 10, error="boom")))
    assert failed is not None and failed["status"] == "failed" and failed["error"] == "boom"


def test_nested_spans_link_to_their_container_and_unfinished_spans_run() -> None:
    t, root, agent, llm = new_trace_id(), new_span_id(), new_span_id(), new_span_id()
    run = map_trace(
        records(
            span(t, root, "wf", 0, None),
            span(t, agent, "agent", 1, 50, parent=root, gen_ai__operation__name="invoke_agent"),
            span(t, llm, "chat", 2, 40, parent=agent, gen_ai__operation__name="chat"),
        )
    )
    assert run is not None
    assert run["status"] == "running" and run["finished_at"] is None
    nodes = {n["id"]: n for n in run["node_executions"]}
    assert nodes[llm]["parent_id"] == agent
    assert nodes[agent]["node_type"] == "agent"


def test_a_one_span_llm_trace_is_a_run_with_that_call_as_its_node() -> None:
    t, root = new_trace_id(), new_span_id()
    run = map_trace(
        records(
            span(
                t,
                root,
                "chat",
                0,
                30,
                gen_ai__operation__name="chat",
                gen_ai__system="openai",
                gen_ai__request__model="gpt-4o-mini",
                gen_ai__usage__prompt_tokens=10,
                gen_ai__usage__completion_tokens=5,
            )
        )
    )
    assert run is not None
    (node,) = run["node_executions"]
    assert (node["id"], node["model_provider"], node["total_tokens"]) == (root, "openai", 15)


def test_decoding_is_lenient_and_rejects_broken_spans_one_by_one() -> None:
    t, root = new_trace_id(), new_span_id()
    good = span(t, root, "wf", 0, 10)
    good["kind"] = "SPAN_KIND_SERVER"  # enum names as well as numbers
    backwards = span(t, new_span_id(), "backwards", 10, 5, parent=root)
    no_trace = span("", new_span_id(), "orphan", 0, 1)
    payload = request([good, backwards, no_trace])
    payload["resourceSpans"][0]["instrumentationLibrarySpans"] = payload["resourceSpans"][0].pop(
        "scopeSpans"
    )
    decoded = decode(orjson.dumps(payload), json=True)
    assert [s["s"] for s in decoded.spans] == [root]
    assert decoded.rejected == 2
    assert any("before start" in e for e in decoded.errors)
    assert any("trace_id" in e for e in decoded.errors)


def test_prompts_are_never_kept_only_their_hash() -> None:
    t, root = new_trace_id(), new_span_id()
    (record,) = records(span(t, root, "wf", 0, 1, input__value="my secret question"))
    assert "my secret question" not in orjson.dumps(record).decode()
    assert len(record["h"]) == 64


@pytest.mark.parametrize(
    ("body", "as_json", "message"),
    [
        (b"{not json", True, "not valid JSON"),
        (b"[1, 2]", True, "JSON object"),
        (b'{"resourceSpans": 5}', True, "ExportTraceServiceRequest"),
        (b"\xff\xff\xff\xff", False, "protobuf"),
    ],
)
def test_undecodable_bodies_say_why(body: bytes, as_json: bool, message: str) -> None:
    with pytest.raises(BadPayload, match=message):
        decode(body, json=as_json)


def test_app_and_workflow_precedence() -> None:
    t, root = new_trace_id(), new_span_id()
    dify = span(t, root, "workflow", 0, 1, dify__app_id="a-uuid", dify__workflow_id="w-uuid")
    run = map_trace(records(dify))
    assert run is not None
    assert (run["app_id"], run["workflow_id"]) == ("a-uuid", "w-uuid")

    payload = request([dify])
    resource = payload["resourceSpans"][0]["resource"]["attributes"]
    resource += [
        {"key": "flowscope.app_id", "value": {"stringValue": "from-resource"}},
        {"key": "service.version", "value": {"stringValue": "2.1.0"}},
    ]
    run = map_trace(decode(orjson.dumps(payload), json=True).spans)
    assert run is not None
    assert (run["app_id"], run["workflow_id"], run["workflow_version"]) == (
        "from-resource",
        "w-uuid",
        "2.1.0",
    )
    bare = map_trace(records(span(t, root, "nightly-etl", 0, 1), service="etl"))
    assert bare is not None and (bare["app_id"], bare["workflow_id"]) == ("etl", "nightly-etl")


def test_predecessors_in_a_wide_fan_out_match_the_definition() -> None:
    """300 siblings with overlapping times: each one's predecessor is the sibling that ended
    last at or before it started (latest end, then highest span id), checked by brute force."""
    import random

    shuffle = random.Random(7)
    t, root = new_trace_id(), new_span_id()
    children = []
    for i in range(300):
        start = shuffle.randrange(0, 5000)
        end = start + shuffle.choice([0, 1, 5, 50, 400])
        children.append(span(t, new_span_id(), f"step-{i}", start, end, parent=root))
    recs = records(span(t, root, "wf", 0, 6000), *children)
    run = map_trace(recs)
    assert run is not None
    by_id = {r["s"]: r for r in recs if r["p"] == root}
    for node in run["node_executions"]:
        me = by_id[node["id"]]
        earlier = [o for o in by_id.values() if o is not me and o["end"] <= me["start"]]
        best = max(earlier, key=lambda o: (o["end"], o["s"]), default=None)
        assert node["predecessor_node_id"] == (best["name"] if best else None)


def two_scopes(framework: list[dict[str, Any]], client: list[dict[str, Any]]) -> list[Any]:
    """One request whose spans come from two instrumentations (scopes)."""
    payload = request(framework, "svc")
    payload["resourceSpans"][0]["scopeSpans"].append(
        {"scope": {"name": "openinference.instrumentation.openai"}, "spans": client}
    )
    decoded = decode(orjson.dumps(payload), json=True)
    assert decoded.rejected == 0
    return decoded.spans


def llm_span(t: str, s: str, name: str, start: int, end: int, parent: str) -> dict[str, Any]:
    return span(
        t,
        s,
        name,
        start,
        end,
        parent=parent,
        openinference__span__kind="LLM",
        llm__model_name="gpt-4o-mini-2024-07-18",
        llm__token_count__prompt=15,
        llm__token_count__completion=4,
    )


def test_a_call_reported_by_a_second_instrumentation_counts_once() -> None:
    t, root, chain, outer, inner = (new_trace_id(), *(new_span_id() for _ in range(4)))
    run = map_trace(
        two_scopes(
            [
                span(t, root, "handle-request", 0, 100),
                span(
                    t,
                    chain,
                    "RunnableSequence",
                    5,
                    90,
                    parent=root,
                    openinference__span__kind="CHAIN",
                ),
                llm_span(t, outer, "ChatOpenAI", 10, 80, chain),
            ],
            # The client library's report of the same call, beside the chain, not in it.
            [llm_span(t, inner, "ChatCompletion", 12, 78, root)],
        )
    )
    assert run is not None
    assert {n["id"] for n in run["node_executions"]} == {chain, outer}


def test_identical_calls_of_one_instrumentation_are_two_calls() -> None:
    """Parallel branches asking the same question: one call inside the other's time."""
    t, root, a, b = new_trace_id(), new_span_id(), new_span_id(), new_span_id()
    run = map_trace(
        records(
            span(t, root, "fan-out", 0, 100),
            llm_span(t, a, "ChatOpenAI", 10, 90, root),
            llm_span(t, b, "ChatOpenAI", 20, 60, root),
        )
    )
    assert run is not None
    assert {n["id"] for n in run["node_executions"]} == {a, b}
    assert {n["node_id"] for n in run["node_executions"]} == {"ChatOpenAI", "ChatOpenAI#2"}


def test_a_child_starting_before_its_parent_on_a_skewed_clock_keeps_its_path() -> None:
    t, root, node, call = new_trace_id(), new_span_id(), new_span_id(), new_span_id()
    run = map_trace(
        records(
            span(t, root, "LangGraph", 0, 100, openinference__span__kind="CHAIN"),
            span(t, node, "plan", 10, 90, parent=root, openinference__span__kind="CHAIN"),
            span(t, call, "ChatOpenAI", 9, 80, parent=node, openinference__span__kind="LLM"),
        )
    )
    assert run is not None
    assert {n["id"]: n["node_id"] for n in run["node_executions"]} == {
        node: "plan",
        call: "plan/ChatOpenAI",
    }
