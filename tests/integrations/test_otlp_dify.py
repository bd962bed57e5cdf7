"""Dify's own traces, built as each of its trace paths builds them (dify_traces), sent over
OTLP/HTTP one request at a time as Dify sends them: each run must be the run Dify recorded,
the run `flowscope import dify` makes from Dify's database (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.conftest import KeyFactory, auth
from tests.integrations.dify_fixture import BY_KEY, Node, Run
from tests.integrations.dify_traces import GRAPH_IDS, PATHS, build, executions

PROTOBUF = {"Content-Type": "application/x-protobuf"}
KEYS = ("plain", "iteration", "loop", "exception", "retry", "failed")


def send(client: TestClient, key: str, path: str, run: Run) -> int:
    """Every request of the path's plan, in order; returns how many were sent."""
    bodies = build(path, run).bodies()
    for body in bodies:
        answer = client.post("/v1/traces", content=body, headers={**auth(key), **PROTOBUF})
        assert answer.status_code == 200, answer.text
        response = ExportTraceServiceResponse.FromString(answer.content)
        assert response.partial_success.rejected_spans == 0, response.partial_success
    return len(bodies)


def read(client: TestClient, key: str, url: str) -> Any:
    answer = client.get(url, headers=auth(key))
    assert answer.status_code == 200, answer.text
    return answer.json()


def node_key(path: str, node: Node) -> str:
    """Dify's graph node id, or, where the path exports none, the title (else the type)."""
    return node.node_id if path in GRAPH_IDS else node.title or node.node_type


@pytest.mark.parametrize("path", PATHS)
def test_each_path_gives_the_run_dify_recorded(
    client: TestClient, make_key: KeyFactory, path: str
) -> None:
    ingest, admin = make_key("ingest"), make_key("admin")
    for run_key in KEYS:
        requests = send(client, ingest, path, BY_KEY[run_key])
        if path != "export":
            assert requests > 1  # one span a request, as Dify exports them
    for run_key in KEYS:
        run = BY_KEY[run_key]
        found = read(client, admin, f"/api/v1/runs/{run.id}")
        assert found["id"] == str(run.id)  # Dify's run id, not the random trace id
        app_id, workflow_id = (str(part) for part in run.app_workflow)
        assert (found["app_id"], found["workflow_id"]) == (app_id, workflow_id)
        assert found["workflow_version"] == run.version
        assert found["status"] == run.status
        assert found["triggered_from"] == run.triggered_from
        assert found["elapsed_ms"] == pytest.approx(run.seconds * 1000)
        # Tokens counted once: not the run span's total again, not the zeros of other nodes.
        assert found["total_tokens"] == run.total_tokens
        # Containers report no split: the run's split is their items'.
        assert found["prompt_tokens"] == sum(n.prompt or 0 for n in run.nodes)
        assert found["completion_tokens"] == sum(n.completion or 0 for n in run.nodes)
        assert found["cost"] == pytest.approx(float(run.cost()), rel=1e-9, abs=1e-12)
        assert found["currency"] == "USD"
        nodes = {n["id"]: n for n in found["node_executions"]}
        assert set(nodes) == {str(run.node_uuid(n)) for n in run.nodes}  # Dify's execution ids
        container_of = {
            n.node_id: str(run.node_uuid(n))
            for n in run.nodes
            if n.node_type in ("iteration", "loop")
        }
        for node in run.nodes:
            got = nodes[str(run.node_uuid(node))]
            assert got["node_id"] == node_key(path, node), (path, node.key)
            assert got["node_type"] == node.node_type
            assert got["status"] == node.status
            assert got["parent_id"] == (container_of[node.container] if node.container else None)
            if node.node_type == "llm" and node.prompt is not None:
                assert (got["prompt_tokens"], got["completion_tokens"]) == (
                    node.prompt,
                    node.completion,
                )
                assert got["model_name"] == "gpt-4o-mini"
            if node.tokens is not None:
                assert got["total_tokens"] == node.tokens
            else:
                assert got["total_tokens"] is None  # Dify's usage of 0 on a node without a model
            if node.price is not None:
                assert got["cost"] == pytest.approx(float(Decimal(node.price)))
                assert got["cost_source"] == "reported"
            if node.error and node.status in ("failed", "exception"):
                assert got["error"] == node.error


@pytest.mark.parametrize("path", PATHS)
def test_retry_rows_count_as_retries_of_the_final_row(
    client: TestClient, make_key: KeyFactory, path: str
) -> None:
    run = BY_KEY["retry"]
    send(client, make_key("ingest"), path, run)
    found = read(client, make_key("admin"), f"/api/v1/runs/{run.id}")
    flaky = sorted(
        (n for n in found["node_executions"] if n["node_type"] == "llm"),
        key=lambda n: n["started_at"],
    )
    assert [(n["status"], n["retry_count"]) for n in flaky] == [
        ("retry", 0),
        ("retry", 0),
        ("succeeded", 2),
    ]


@pytest.mark.parametrize("path", ["unified-otel", "legacy-phoenix-tree"])
def test_the_predecessor_tree_gives_predecessors_not_containers(
    client: TestClient, make_key: KeyFactory, path: str
) -> None:
    """The unified path hangs `answer` under `kb`'s span: that is its predecessor, not its
    container, and the critical path is the run's chain, not one node."""
    run = BY_KEY["plain"]
    send(client, make_key("ingest"), path, run)
    admin = make_key("admin")
    found = read(client, admin, f"/api/v1/runs/{run.id}")
    by_node = {n["node_id"]: n for n in found["node_executions"]}
    names = {n.node_id: node_key(path, n) for n in run.nodes}
    for before, after in zip(run.nodes, run.nodes[1:], strict=False):
        assert by_node[names[after.node_id]]["predecessor_node_id"] == names[before.node_id]
        assert by_node[names[after.node_id]]["parent_id"] is None
    path_found = read(client, admin, f"/api/v1/runs/{run.id}/critical-path")
    assert len(path_found["critical_path"]) == len(run.nodes)


def test_iteration_items_are_on_the_critical_path_inside_their_container(
    client: TestClient, make_key: KeyFactory
) -> None:
    run = BY_KEY["iteration"]
    send(client, make_key("ingest"), "unified-otel", run)
    found = read(client, make_key("admin"), f"/api/v1/runs/{run.id}/critical-path")
    iteration = next(s for s in found["steps"] if s["node_type"] == "iteration")
    assert iteration["on_critical_path"]
    summaries = [c for c in iteration["children"] if c["node_type"] == "llm"]
    assert len(summaries) == 3 and all(c["on_critical_path"] for c in summaries)
    assert all(c["parent_id"] == iteration["id"] for c in iteration["children"])


def test_the_run_span_arriving_last_waits_then_maps(
    client: TestClient, make_key: KeyFactory
) -> None:
    """The newer legacy provider exports the workflow span after every node span."""
    run = BY_KEY["plain"]
    key, admin = make_key("ingest"), make_key("admin")
    bodies = build("legacy-phoenix-tree", run).bodies()
    for body in bodies[:-1]:
        assert (
            client.post("/v1/traces", content=body, headers={**auth(key), **PROTOBUF}).status_code
            == 200
        )
    assert client.get(f"/api/v1/runs/{run.id}", headers=auth(admin)).status_code == 404
    client.post("/v1/traces", content=bodies[-1], headers={**auth(key), **PROTOBUF})
    assert read(client, admin, f"/api/v1/runs/{run.id}")["total_tokens"] == run.total_tokens


def test_the_spans_of_a_path_match_the_rows_they_come_from() -> None:
    """The builder itself: one span per execution, and the unified path's staircase."""
    run = BY_KEY["plain"]
    spans = [s for request in build("unified-otel", run).requests for s in request]
    assert len(spans) == len(run.nodes) + 1
    by_id = {s.context.span_id: s for s in spans}
    execs = executions(run)
    named = {s.name: s for s in spans}
    for before, after in itertools.pairwise(execs):
        parent = by_id[named[after.name].parent.span_id]  # type: ignore[union-attr]
        assert parent.name == before.name
    assert len({s.context.trace_id for s in spans}) == 1


def test_statuses_and_attributes_a_later_dify_invents_are_not_fatal() -> None:
    import orjson

    from flowscope.integrations.otlp_decode import decode
    from flowscope.integrations.otlp_mapping import map_trace
    from tests.integrations.otlp_payloads import new_span_id, new_trace_id, request, span

    t, run_span, node = new_trace_id(), new_span_id(), new_span_id()
    run_meta = {"workflow_run_id": "r-1", "app_id": "a", "workflow_id": "w", "status": "archived"}
    node_meta = {"node_id": "n1", "node_execution_id": "e-1", "node_type": "llm", "status": "x"}
    spans = [
        span(
            t,
            run_span,
            "workflow_r-1",
            0,
            100,
            metadata=orjson.dumps(run_meta).decode(),
            dify__span__id="r-1",
            dify__future__thing="?",
        ),
        span(
            t,
            node,
            "llm_Draft",
            10,
            90,
            parent=run_span,
            error="boom",
            metadata=orjson.dumps(node_meta).decode(),
            dify__span__id="e-1",
        ),
    ]
    run = map_trace(decode(orjson.dumps(request(spans)), json=True).spans)
    assert run is not None and (run["id"], run["status"]) == ("r-1", "succeeded")
    (only,) = run["node_executions"]
    assert (only["id"], only["node_id"], only["status"]) == ("e-1", "n1", "failed")


def test_out_of_range_numbers_are_unknown_not_a_server_error(
    client: TestClient, make_key: KeyFactory
) -> None:
    """Seconds that overflow once in ms, and counts no database column holds."""
    import json

    import orjson

    from tests.integrations.otlp_payloads import new_span_id, new_trace_id, request, span

    t, run_span, node = new_trace_id(), new_span_id(), new_span_id()
    run_meta = {"workflow_run_id": "r-big", "app_id": "a", "workflow_id": "w",
                "elapsed_time": 1e308, "total_tokens": 2**70}  # fmt: skip
    node_meta = {"node_id": "n1", "node_execution_id": "e-big", "node_type": "llm",
                 "prompt_tokens": 2**62, "completion_tokens": 3}  # fmt: skip
    spans = [
        span(t, run_span, "workflow_r-big", 0, 100, metadata=json.dumps(run_meta),
             dify__span__id="r-big"),
        span(t, node, "llm_Draft", 10, 90, parent=run_span,
             metadata=json.dumps(node_meta), dify__span__id="e-big"),
    ]  # fmt: skip
    answer = client.post(
        "/v1/traces",
        content=orjson.dumps(request(spans)),
        headers={**auth(make_key("ingest")), "Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    found = read(client, make_key("admin"), "/api/v1/runs/r-big")
    assert found["elapsed_ms"] == pytest.approx(100)  # from the timestamps
    assert found["total_tokens"] == 3  # the reported total was no count: its nodes'
    (only,) = found["node_executions"]
    assert (only["prompt_tokens"], only["completion_tokens"]) == (None, 3)
