"""POST /v1/traces over HTTP (the app in-process, on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import base64
import gzip
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import KeyFactory, auth
from tests.integrations.otlp_payloads import new_span_id, new_trace_id, request, span

JSON = {"Content-Type": "application/json"}
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def post_json(client: TestClient, key: str, payload: dict[str, Any], **headers: str) -> Any:
    return client.post(
        "/v1/traces", content=orjson.dumps(payload), headers={**auth(key), **JSON, **headers}
    )


def as_protobuf(payload: dict[str, Any]) -> bytes:
    """The same request in the protobuf encoding: protobuf's JSON mapping wants base64 ids."""
    document = orjson.loads(orjson.dumps(payload))
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for item in scope_spans["spans"]:
                for field in ("traceId", "spanId", "parentSpanId"):
                    if field in item:
                        item[field] = base64.b64encode(bytes.fromhex(item[field])).decode()
    return json_format.ParseDict(document, ExportTraceServiceRequest()).SerializeToString()


def workflow_trace() -> tuple[str, list[dict[str, Any]]]:
    t, root, llm, tool = new_trace_id(), new_span_id(), new_span_id(), new_span_id()
    return t, [
        span(
            t,
            root,
            "answer",
            0,
            1000,
            flowscope__app_id="helpdesk",
            flowscope__workflow_id="answer",
        ),
        span(
            t,
            llm,
            "chat",
            10,
            610,
            parent=root,
            gen_ai__operation__name="chat",
            gen_ai__provider__name="openai",
            gen_ai__request__model="gpt-4o-mini",
            gen_ai__usage__input_tokens=1000,
            gen_ai__usage__output_tokens=100,
        ),
        span(t, tool, "lookup", 620, 900, parent=root, gen_ai__tool__name="lookup"),
    ]


def test_a_json_trace_becomes_a_run(client: TestClient, make_key: KeyFactory) -> None:
    key = make_key("ingest")
    reader = make_key("read")
    trace_id, spans = workflow_trace()
    response = post_json(client, key, request(spans))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    run = client.get(f"/api/v1/runs/{trace_id}", headers=auth(reader)).json()
    assert (run["app_id"], run["workflow_id"], run["status"]) == ("helpdesk", "answer", "succeeded")
    assert run["elapsed_ms"] == pytest.approx(1000)
    assert run["triggered_from"] == "otlp"
    nodes = {n["node_id"]: n for n in run["node_executions"]}
    assert nodes["chat"]["elapsed_ms"] == pytest.approx(600)
    assert (nodes["chat"]["total_tokens"], nodes["chat"]["cost_source"]) == (1100, "estimated")
    assert nodes["chat"]["cost"] == pytest.approx(0.00021)  # 1000 x $0.15 + 100 x $0.60 per 1M
    assert nodes["lookup"]["node_type"] == "tool"
    assert run["total_tokens"] == 1100


def test_nul_characters_in_spans_are_stored_as_replacement_characters(
    client: TestClient, make_key: KeyFactory
) -> None:
    """A trace is not refused for a NUL (PostgreSQL cannot store it; it was a 500, D2)."""
    key, reader = make_key("ingest"), make_key("read")
    trace_id, spans = workflow_trace()
    spans[2]["name"] = "look\x00up"
    for attribute in spans[2]["attributes"]:
        attribute["value"] = {"stringValue": "look\x00up"}  # gen_ai.tool.name
    spans[1]["status"] = {"code": 2, "message": "bad\x00thing"}
    response = post_json(client, key, request(spans))
    assert response.status_code == 200, response.text
    run = client.get(f"/api/v1/runs/{trace_id}", headers=auth(reader)).json()
    names = {n["node_id"] for n in run["node_executions"]}
    assert "look\ufffdup" in names
    (chat,) = [n for n in run["node_executions"] if n["node_id"] == "chat"]
    assert chat["error"] == "bad\ufffdthing"


def test_protobuf_and_gzip_and_the_api_key_header(client: TestClient, make_key: KeyFactory) -> None:
    key = make_key("ingest")
    trace_id, spans = workflow_trace()
    body = gzip.compress(as_protobuf(request(spans)))
    response = client.post(
        "/v1/traces",
        content=body,
        headers={**PROTOBUF, "Content-Encoding": "gzip", "x-flowscope-api-key": key},
    )
    assert response.status_code == 200, response.content
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    run = client.get(f"/api/v1/runs/{trace_id}", headers=auth(key))
    assert run.status_code == 403  # an ingest key may not read; an admin may
    assert (
        client.get(f"/api/v1/runs/{trace_id}", headers=auth(make_key())).json()["node_count"] == 2
    )


def test_a_trace_split_over_requests_merges_idempotently(
    client: TestClient, make_key: KeyFactory
) -> None:
    key, admin = make_key("ingest"), make_key()
    trace_id, (root, *children) = workflow_trace()
    assert post_json(client, key, request(children)).status_code == 200
    assert client.get(f"/api/v1/runs/{trace_id}", headers=auth(admin)).status_code == 404
    assert post_json(client, key, request([root])).status_code == 200
    first = client.get(f"/api/v1/runs/{trace_id}", headers=auth(admin)).json()
    assert first["node_count"] == 2
    # Everything again, and one late child: same run, one more node, nothing doubled.
    late = span(trace_id, new_span_id(), "late", 950, 990, parent=root["spanId"])
    assert post_json(client, key, request([root, *children, late])).status_code == 200
    again = client.get(f"/api/v1/runs/{trace_id}", headers=auth(admin)).json()
    assert again["node_count"] == 3
    assert again["total_tokens"] == first["total_tokens"] == 1100
    summary = client.get("/api/v1/apps/helpdesk/workflows/answer/runs", headers=auth(admin)).json()
    assert len(summary["data"]) == 1


def test_rejected_spans_are_reported_in_partial_success(
    client: TestClient, make_key: KeyFactory
) -> None:
    key = make_key("ingest")
    trace_id, spans = workflow_trace()
    broken = span(trace_id, new_span_id(), "backwards", 500, 100, parent=spans[0]["spanId"])
    response = post_json(client, key, request([*spans, broken]))
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "before start" in partial["errorMessage"]
    run = client.get(f"/api/v1/runs/{trace_id}", headers=auth(make_key())).json()
    assert run["node_count"] == 2


def test_the_same_trace_id_in_two_tenants_is_two_runs_never_merged(
    client: TestClient, make_key: KeyFactory
) -> None:
    ours, theirs = make_key("ingest", tenant="acme"), make_key("ingest", tenant="globex")
    trace_id, spans = workflow_trace()
    assert post_json(client, ours, request(spans)).status_code == 200
    theirs_spans = [dict(s, name=f"theirs-{s['name']}") for s in spans]
    response = post_json(client, theirs, request(theirs_spans[:2]))
    assert response.status_code == 200 and response.json() == {}
    mine = client.get(f"/api/v1/runs/{trace_id}", headers=auth(make_key("read", tenant="acme")))
    other = client.get(f"/api/v1/runs/{trace_id}", headers=auth(make_key("read", tenant="globex")))
    assert mine.json()["node_count"] == 2 and other.json()["node_count"] == 1
    assert all(not n["node_id"].startswith("theirs") for n in mine.json()["node_executions"])


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        ({**JSON}, b"{}", 401, "missing API key"),
        ({**JSON, "Authorization": "Bearer fsk_nope"}, b"{}", 401, "unknown"),
        ({"Content-Type": "text/plain"}, b"x", 415, "Content-Type"),
        ({**JSON}, b"{oops", 400, "not valid JSON"),
        ({**PROTOBUF}, b"\xff\xff\xff", 400, "protobuf"),
        ({**JSON, "Content-Encoding": "gzip"}, b"not gzip", 400, "gzip"),
    ],
)
def test_errors_are_google_rpc_status_in_the_request_encoding(
    client: TestClient,
    make_key: KeyFactory,
    headers: dict[str, str],
    body: bytes,
    status: int,
    message: str,
) -> None:
    if "Authorization" not in headers and status != 401:
        headers = {**headers, **auth(make_key("ingest"))}
    response = client.post("/v1/traces", content=body, headers=headers)
    assert response.status_code == status
    if response.headers["content-type"] == "application/json":
        assert message in response.json()["message"]
    else:
        assert message in status_pb2.Status.FromString(response.content).message


def test_a_read_key_may_not_send_traces(client: TestClient, make_key: KeyFactory) -> None:
    response = post_json(client, make_key("read"), request(workflow_trace()[1]))
    assert response.status_code == 403


def test_bodies_over_the_limit_get_413_also_after_decompression(
    db_url: str, make_key: KeyFactory
) -> None:
    from flowscope.config import Settings
    from flowscope.server import create_app

    key = make_key("ingest")
    app = create_app(Settings(database_url=db_url, auto_migrate=False, max_body_bytes=4096))
    with TestClient(app) as small:
        big = orjson.dumps(request(workflow_trace()[1] * 1)) + b" " * 5000
        assert (
            small.post("/v1/traces", content=big, headers={**auth(key), **JSON}).status_code == 413
        )
        bomb = gzip.compress(big)
        assert len(bomb) < 4096
        response = small.post(
            "/v1/traces", content=bomb, headers={**auth(key), **JSON, "Content-Encoding": "gzip"}
        )
        assert response.status_code == 413
        assert "after decompression" in response.json()["message"]


def test_overload_answers_429_with_retry_after(db_url: str, make_key: KeyFactory) -> None:
    from flowscope.config import Settings
    from flowscope.server import create_app

    key = make_key("ingest")
    app = create_app(Settings(database_url=db_url, auto_migrate=False, otlp_queue_limit=0))
    with TestClient(app) as busy:
        app.state.otlp_receiver.slots = asyncio.Semaphore(0)  # every write slot taken
        response = busy.post(
            "/v1/traces",
            content=orjson.dumps(request(workflow_trace()[1])),
            headers={**auth(key), **JSON},
        )
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) > 0
        assert response.json()["code"] == 8  # RESOURCE_EXHAUSTED


def test_halves_of_traces_sent_concurrently_always_end_whole(engine: Any) -> None:
    """Children and roots of the same traces race in two threads: whatever the interleaving,
    each run ends with all its node executions (the trace locks and the re-check)."""
    from concurrent.futures import ThreadPoolExecutor

    from flowscope.integrations.otlp_decode import decode
    from flowscope.integrations.otlp_ingest import ingest_spans
    from flowscope.runs.pricing import PriceBook
    from flowscope.runs.read import read_run
    from flowscope.store.engine import read_transaction, write_transaction
    from flowscope.tenancy.keys import ensure_tenant

    with write_transaction(engine) as conn:
        tenant_id = ensure_tenant(conn, "acme")
    traces = [workflow_trace() for _ in range(30)]
    roots = [decode(orjson.dumps(request([spans[0]])), json=True).spans for _, spans in traces]
    children = [decode(orjson.dumps(request(spans[1:])), json=True).spans for _, spans in traces]
    prices = PriceBook()

    def send(parts: list[list[dict[str, Any]]]) -> None:
        for records in parts:
            ingest_spans(engine, tenant_id, records, prices=prices)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(send, [roots, children]))
    with read_transaction(engine) as conn:
        for trace_id, _ in traces:
            run = read_run(conn, tenant_id, trace_id)
            assert run is not None and run.node_count == 2, trace_id


def test_pruning_forgets_old_spans_and_keeps_their_runs(engine: Any) -> None:
    from flowscope.integrations.otlp_decode import decode
    from flowscope.integrations.otlp_ingest import ingest_spans, prune_spans
    from flowscope.runs.pricing import PriceBook
    from flowscope.runs.read import read_run
    from flowscope.store.engine import read_transaction, write_transaction
    from flowscope.tenancy.keys import ensure_tenant

    with write_transaction(engine) as conn:
        tenant_id = ensure_tenant(conn, "acme")
    old_trace, old_spans = workflow_trace()
    new_trace, new_spans = workflow_trace()
    for spans, received in ((old_spans, 1_000), (new_spans, 2_000)):
        records = decode(orjson.dumps(request(spans)), json=True).spans
        ingest_spans(engine, tenant_id, records, prices=PriceBook(), now_us=received)
    with write_transaction(engine) as conn:
        assert prune_spans(conn, 1_500) == 3
    with read_transaction(engine) as conn:
        left = conn.exec_driver_sql("SELECT DISTINCT trace_id FROM otlp_spans").scalars().all()
        assert left == [new_trace]
        run = read_run(conn, tenant_id, old_trace)
        assert run is not None and run.node_count == 2


def test_a_trace_whose_root_never_comes_settles_as_a_run_of_its_service(engine: Any) -> None:
    """An older exporter's service called from one that does not export: no root, no
    remote flag. Once quiet, the trace is a run of the service's workflow."""
    from flowscope.integrations.otlp_decode import decode
    from flowscope.integrations.otlp_ingest import ingest_spans, settle_rootless_traces
    from flowscope.runs.pricing import PriceBook
    from flowscope.runs.read import read_run
    from flowscope.store.engine import read_transaction, write_transaction
    from flowscope.tenancy.keys import ensure_tenant

    with write_transaction(engine) as conn:
        tenant_id = ensure_tenant(conn, "acme")
    t, absent, chain, call = new_trace_id(), new_span_id(), new_span_id(), new_span_id()
    orphans = [
        span(
            t, chain, "RunnableSequence", 0, 900, parent=absent, openinference__span__kind="CHAIN"
        ),
        span(
            t,
            call,
            "ChatOpenAI",
            10,
            800,
            parent=chain,
            openinference__span__kind="LLM",
            llm__model_name="gpt-4o-mini",
            llm__token_count__prompt=100,
            llm__token_count__completion=20,
        ),
    ]
    other_t, absent_root = new_trace_id(), new_span_id()
    prices = PriceBook()
    for spans in (orphans, [span(other_t, new_span_id(), "child", 0, 5, parent=absent_root)]):
        records = decode(orjson.dumps(request(spans, "rag-service")), json=True).spans
        result = ingest_spans(engine, tenant_id, records, prices=prices, now_us=1_000)
        assert result.traces_waiting == 1
    # Not yet quiet: nothing to settle.
    assert settle_rootless_traces(engine, prices=prices, quiet_since_us=1_000) == 0
    assert settle_rootless_traces(engine, prices=prices, quiet_since_us=2_000) == 2
    with read_transaction(engine) as conn:
        run = read_run(conn, tenant_id, t)
        assert run is not None
        assert (run.app_id, run.workflow_id) == ("rag-service", "rag-service")
        assert {n.node_id for n in run.node_executions} == {
            "RunnableSequence",
            "RunnableSequence/ChatOpenAI",
        }
        assert run.total_tokens == 120
        spans_left = conn.exec_driver_sql("SELECT COUNT(*) FROM otlp_spans").scalar_one()
        assert spans_left == 3  # the spans stay until the retention, as for any trace
    assert settle_rootless_traces(engine, prices=prices, quiet_since_us=3_000) == 0


def test_a_database_down_answers_503_as_a_status_with_retry_after() -> None:
    from flowscope.config import Settings
    from flowscope.server import create_app
    from tests.servers import free_port

    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    with TestClient(create_app(Settings(database_url=url, auto_migrate=False))) as down:
        response = down.post(
            "/v1/traces",
            content=orjson.dumps(request(workflow_trace()[1])),
            headers={**auth("fsk_x"), **JSON},
        )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["code"] == 14  # UNAVAILABLE
    assert "nothing was stored" in response.json()["message"]
