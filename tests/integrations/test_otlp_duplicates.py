"""A model call reported twice, in two traces: the rule (pure), and over HTTP in both orders
of arrival, with the rollups equal to the runs that remain (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from flowscope.integrations.otlp_duplicates import Call, duplicates
from tests.conftest import KeyFactory, auth
from tests.integrations.otlp_payloads import new_span_id, new_trace_id, request, span

HOLDER = Call("t-graph", "s1", "k", "gpt-4o-mini-2024-07-18", 100, 500, False, "langchain")


@pytest.mark.parametrize(
    ("lone", "repeated"),
    [
        (Call("t-lone", "s2", "k", "gpt-4o-mini-2024-07-18", 150, 450, lone=True), True),
        (Call("t-lone", "s2", "k", "gpt-4o-mini", 150, 450, lone=True), True),  # dated name
        (Call("t-lone", "s2", "k", None, 150, 450, lone=True), True),  # a failed call's
        (Call("t-lone", "s2", "k", "gpt-4o", 150, 450, lone=True), False),  # another model
        (Call("t-lone", "s2", "other", "gpt-4o-mini", 150, 450, lone=True), False),  # usage
        (Call("t-lone", "s2", "k", "gpt-4o-mini", 50, 450, lone=True), False),  # began before
        (Call("t-lone", "s2", "k", "gpt-4o-mini", 150, 550, lone=True), False),  # ended after
        (Call("t-lone", "s2", "k", "gpt-4o-mini", 150, 450, lone=False), False),  # in a run
        (Call("t-graph", "s2", "k", "gpt-4o-mini", 150, 450, lone=True), False),  # same trace
        (Call("t-lone", "s2", "k", "gpt-4o-mini", 150, 450, True, "openai"), True),
        # the holder's own instrumentation: a separate, shorter identical call
        (Call("t-lone", "s2", "k", "gpt-4o-mini", 150, 450, True, "langchain"), False),
    ],
)
def test_a_lone_call_held_by_another_traces_call_is_a_repeat(lone: Call, repeated: bool) -> None:
    assert duplicates([lone], [HOLDER]) == ({lone.trace_id} if repeated else set())
    assert duplicates([HOLDER], [lone]) == ({lone.trace_id} if repeated else set())
    assert duplicates([HOLDER, lone], []) == ({lone.trace_id} if repeated else set())


def chat(t: str, s: str, start: int, end: int, parent: str | None = None) -> dict[str, Any]:
    return span(
        t,
        s,
        "ChatCompletion",
        start,
        end,
        parent=parent,
        openinference__span__kind="LLM",
        llm__model_name="gpt-4o-mini-2024-07-18",
        llm__token_count__prompt=120,
        llm__token_count__completion=30,
    )


def post(client: TestClient, key: str, spans: list[dict[str, Any]], scope: str) -> None:
    payload = request(spans, "graph-service")
    payload["resourceSpans"][0]["scopeSpans"][0]["scope"]["name"] = scope
    body = orjson.dumps(payload)
    answer = client.post(
        "/v1/traces", content=body, headers={**auth(key), "Content-Type": "application/json"}
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("lone_first", [True, False])
def test_the_repeat_makes_no_run_whichever_trace_arrives_first(
    client: TestClient, make_key: KeyFactory, lone_first: bool
) -> None:
    ingest, admin = make_key("ingest"), make_key("admin")
    graph, lone = new_trace_id(), new_trace_id()
    root, node, call = new_span_id(), new_span_id(), new_span_id()
    graph_spans = [
        span(graph, root, "LangGraph", 0, 1000, openinference__span__kind="CHAIN"),
        span(graph, node, "plan", 10, 900, parent=root, openinference__span__kind="CHAIN"),
        chat(graph, call, 20, 800, parent=node) | {"name": "ChatOpenAI"},
    ]
    lone_spans = [chat(lone, new_span_id(), 30, 790)]
    # A real separate call of the same service, outside the graph's call: it stays.
    separate = new_trace_id()
    separate_spans = [chat(separate, new_span_id(), 2000, 2500)]
    graph_sent = (graph_spans, "openinference.instrumentation.langchain")
    lone_sent = (lone_spans, "openinference.instrumentation.openai")
    order = [lone_sent, graph_sent] if lone_first else [graph_sent, lone_sent]
    for spans, scope in [*order, (separate_spans, "openinference.instrumentation.openai")]:
        post(client, ingest, spans, scope)

    assert client.get(f"/api/v1/runs/{lone}", headers=auth(admin)).status_code == 404
    assert client.get(f"/api/v1/runs/{graph}", headers=auth(admin)).status_code == 200
    assert client.get(f"/api/v1/runs/{separate}", headers=auth(admin)).status_code == 200
    # The rollups hold exactly the two runs that remain.
    for workflow, tokens in (("LangGraph", 150), ("graph-service", 150)):
        summary = client.get(
            f"/api/v1/apps/graph-service/workflows/{workflow}/performance/summary",
            params={"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
            headers=auth(admin),
        ).json()
        assert (summary["run_count"], summary["tokens"]["total"]) == (1, tokens), summary
