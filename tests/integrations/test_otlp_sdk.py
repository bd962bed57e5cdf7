"""Traces sent by the real OpenTelemetry SDK and its OTLP/HTTP exporters (protobuf and JSON)
to a real `flowscope serve` process, for both attribute conventions."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.json.http.trace_exporter import (
    OTLPSpanExporter as JsonSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as ProtobufSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, Tracer, set_span_in_context

from tests.conftest import KeyFactory, auth
from tests.servers import Server, start_server

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
MS = 1_000_000


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    running = start_server(
        ["--database-url", db_url, "--log-level", "warning"], log=tmp_path / "server.log"
    )
    yield running
    running.stop()


Recorder = tuple[Tracer, InMemorySpanExporter]


def recorder(service: str) -> Recorder:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider.get_tracer("flowscope-tests"), memory


def send(
    exporter_type: str, url: str, key: str, spans: Sequence[ReadableSpan], *, bearer: bool = True
) -> None:
    headers = {"Authorization": f"Bearer {key}"} if bearer else {"x-flowscope-api-key": key}
    exporter: Any
    if exporter_type == "protobuf":
        exporter = ProtobufSpanExporter(
            endpoint=f"{url}/v1/traces", headers=headers, compression=Compression.Gzip
        )
    else:
        exporter = JsonSpanExporter(endpoint=f"{url}/v1/traces", headers=headers)
    try:
        assert exporter.export(spans) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


def genai_workflow(tracer: Tracer) -> None:
    """An OTel GenAI workflow: invoke_workflow > [chat (current names), chat (deprecated
    names), execute_tool (failed)]."""
    root = tracer.start_span(
        "invoke_workflow support",
        start_time=T0,
        attributes={"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "support"},
    )
    ctx = set_span_in_context(root)
    chat = tracer.start_span(
        "chat gpt-4o",
        context=ctx,
        start_time=T0 + 5 * MS,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 300,
        },
    )
    chat.end(end_time=T0 + 805 * MS)
    legacy = tracer.start_span(
        "chat claude",
        context=ctx,
        start_time=T0 + 810 * MS,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": "claude-3-5-haiku-latest",
            "gen_ai.usage.prompt_tokens": 400,
            "gen_ai.usage.completion_tokens": 100,
        },
    )
    legacy.end(end_time=T0 + 1210 * MS)
    tool = tracer.start_span(
        "execute_tool refund",
        context=ctx,
        start_time=T0 + 1220 * MS,
        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "refund"},
    )
    tool.set_status(Status(StatusCode.ERROR, "refund service timed out"))
    tool.end(end_time=T0 + 1720 * MS)
    root.end(end_time=T0 + 2000 * MS)


def openinference_chain(tracer: Tracer) -> None:
    """An OpenInference (Phoenix) trace: CHAIN > [RETRIEVER, LLM with cost, TOOL]."""
    root = tracer.start_span(
        "rag-pipeline",
        start_time=T0,
        attributes={"openinference.span.kind": "CHAIN", "flowscope.workflow_id": "rag"},
    )
    ctx = set_span_in_context(root)
    for name, kind, start, end, extra in (
        ("retrieve", "RETRIEVER", 1, 121, {}),
        (
            "ChatOpenAI",
            "LLM",
            125,
            925,
            {
                "llm.model_name": "gpt-4o-mini",
                "llm.provider": "openai",
                "llm.token_count.prompt": 900,
                "llm.token_count.completion": 120,
                "llm.token_count.total": 1020,
                "llm.cost.total": 0.000207,
                "input.value": "what is our refund policy?",
            },
        ),
        ("format_answer", "TOOL", 930, 950, {}),
    ):
        child = tracer.start_span(
            name,
            context=ctx,
            start_time=T0 + start * MS,
            attributes={"openinference.span.kind": kind, **extra},
        )
        child.end(end_time=T0 + end * MS)
    root.end(end_time=T0 + 1000 * MS)


def read_run(url: str, key: str, trace_id: int) -> dict[str, Any]:
    response = httpx.get(f"{url}/api/v1/runs/{trace_id:032x}", headers=auth(key))
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def trace_id_of(spans: Sequence[ReadableSpan]) -> int:
    (trace_id,) = {span.context.trace_id for span in spans}
    return trace_id


@pytest.mark.e2e
@pytest.mark.parametrize("exporter_type", ["protobuf", "json"])
def test_genai_conventions(server: Server, make_key: KeyFactory, exporter_type: str) -> None:
    key = make_key("admin")
    tracer, memory = recorder("support-bot")
    genai_workflow(tracer)
    spans = memory.get_finished_spans()
    send(exporter_type, server.url, key, spans)

    run = read_run(server.url, key, trace_id_of(spans))
    assert (run["app_id"], run["workflow_id"]) == ("support-bot", "support")
    assert run["status"] == "partial-succeeded"
    assert run["elapsed_ms"] == pytest.approx(2000)
    assert run["started_at"].startswith("2026-01-01T00:00:00")
    nodes = {n["title"]: n for n in run["node_executions"]}
    assert set(nodes) == {"chat gpt-4o", "chat claude", "execute_tool refund"}
    chat, legacy, tool = nodes["chat gpt-4o"], nodes["chat claude"], nodes["execute_tool refund"]
    assert tool["node_id"] == "refund"  # a tool's step is named by gen_ai.tool.name
    assert (chat["node_type"], chat["model_provider"], chat["model_name"]) == (
        "llm",
        "openai",
        "gpt-4o-2024-08-06",
    )
    assert (chat["prompt_tokens"], chat["completion_tokens"], chat["elapsed_ms"]) == (
        1200,
        300,
        800,
    )
    assert chat["cost"] == pytest.approx(1200 * 2.5e-6 + 300 * 10e-6)  # gpt-4o list prices
    assert (legacy["model_provider"], legacy["prompt_tokens"], legacy["total_tokens"]) == (
        "anthropic",
        400,
        500,
    )
    assert (tool["node_type"], tool["status"], tool["error"]) == (
        "tool",
        "failed",
        "refund service timed out",
    )
    assert legacy["predecessor_node_id"] == "chat gpt-4o"
    assert [n["index"] for n in sorted(run["node_executions"], key=lambda n: n["started_at"])] == [
        1,
        2,
        3,
    ]
    assert run["total_tokens"] == 2000


@pytest.mark.e2e
@pytest.mark.parametrize("exporter_type", ["protobuf", "json"])
def test_openinference_conventions(
    server: Server, make_key: KeyFactory, exporter_type: str
) -> None:
    key = make_key("admin")
    tracer, memory = recorder("kb-service")
    openinference_chain(tracer)
    spans = memory.get_finished_spans()
    send(exporter_type, server.url, key, spans, bearer=False)

    run = read_run(server.url, key, trace_id_of(spans))
    assert (run["app_id"], run["workflow_id"], run["status"]) == ("kb-service", "rag", "succeeded")
    nodes = {n["node_id"]: n for n in run["node_executions"]}
    assert {k: n["node_type"] for k, n in nodes.items()} == {
        "retrieve": "knowledge-retrieval",
        "ChatOpenAI": "llm",
        "format_answer": "tool",
    }
    llm = nodes["ChatOpenAI"]
    assert (llm["model_name"], llm["prompt_tokens"], llm["completion_tokens"]) == (
        "gpt-4o-mini",
        900,
        120,
    )
    assert (llm["cost"], llm["cost_source"]) == (pytest.approx(0.000207), "reported")
    assert llm["input_hash"] is not None and len(llm["input_hash"]) == 64
    assert nodes["retrieve"]["elapsed_ms"] == pytest.approx(120)
    assert run["total_tokens"] == 1020


@pytest.mark.e2e
def test_a_trace_exported_in_pieces_by_the_sdk_is_one_run(
    server: Server, make_key: KeyFactory
) -> None:
    key = make_key("admin")
    tracer, memory = recorder("support-bot")
    genai_workflow(tracer)
    spans = memory.get_finished_spans()
    children, root = spans[:-1], spans[-1:]  # the SDK finishes children first
    send("protobuf", server.url, key, children)
    missing = httpx.get(f"{server.url}/api/v1/runs/{trace_id_of(spans):032x}", headers=auth(key))
    assert missing.status_code == 404
    send("json", server.url, key, root)
    send("protobuf", server.url, key, spans)  # an exporter retry: nothing doubles
    run = read_run(server.url, key, trace_id_of(spans))
    assert run["node_count"] == 3 and run["total_tokens"] == 2000
