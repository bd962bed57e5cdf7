"""OTLP/gRPC: the real SDK's gRPC exporter and raw TraceService calls against a real
`flowscope serve --otlp-grpc-port` process, and the refusals that need a rigged server
(overload, database down) against the app in-process."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from fastapi.testclient import TestClient
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.trace.export import SpanExportResult

from flowscope.config import Settings
from flowscope.server import create_app
from tests.conftest import KeyFactory
from tests.integrations.otlp_payloads import request, span
from tests.integrations.test_otlp_api import as_protobuf, workflow_trace
from tests.integrations.test_otlp_sdk import (
    genai_workflow,
    openinference_chain,
    read_run,
    recorder,
    trace_id_of,
)
from tests.servers import Server, flowscope, free_port, start_server

MAX_BODY_BYTES = 64 * 1024
on_linux = pytest.mark.skipif(
    not Path("/proc/self/net/tcp").exists(), reason="reads listening sockets from /proc"
)


@pytest.fixture
def server(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Server, int]]:
    """A server with OTLP/gRPC on, and the gRPC port."""
    monkeypatch.setenv("FLOWSCOPE_MAX_BODY_BYTES", str(MAX_BODY_BYTES))
    grpc_port = free_port()
    args = ["--database-url", db_url, "--log-level", "warning", "--otlp-grpc-port", str(grpc_port)]
    running = start_server(args, log=tmp_path / "server.log")
    yield running, grpc_port
    running.stop()


def export(port: int, message: ExportTraceServiceRequest, **metadata: str) -> Exception | object:
    """A raw TraceService/Export call: the response, or the grpc.RpcError it raised."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            return TraceServiceStub(channel).Export(message, metadata=tuple(metadata.items()))
        except grpc.RpcError as exc:
            return exc


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def refusal(outcome: object) -> tuple[grpc.StatusCode, str]:
    assert isinstance(outcome, grpc.Call), outcome
    return outcome.code(), outcome.details() or ""


def retry_delay_s(outcome: object) -> int | None:
    """The RetryInfo of a refusal, from the status details (as the OTLP specification asks),
    checked equal to the one OpenTelemetry's Python exporter reads."""
    assert isinstance(outcome, grpc.Call)
    trailers = dict(outcome.trailing_metadata() or ())
    if "grpc-status-details-bin" not in trailers:
        assert "google.rpc.retryinfo-bin" not in trailers
        return None
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert trailers["google.rpc.retryinfo-bin"] == retry.SerializeToString()
    return int(retry.retry_delay.seconds)


def listening_ports(pid: int) -> set[int]:
    """The TCP ports a process listens on: its socket inodes in /proc/net/tcp and tcp6."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.mark.e2e
def test_the_sdk_grpc_exporter_sends_runs(server: tuple[Server, int], make_key: KeyFactory) -> None:
    running, port = server
    if Path("/proc/self/net/tcp").exists():  # one process serves both
        assert listening_ports(running.process.pid) == {int(running.url.rsplit(":", 1)[1]), port}
    key, reader = make_key("ingest"), make_key("read")
    for workflow, headers in (
        (genai_workflow, bearer(key)),
        (openinference_chain, {"x-flowscope-api-key": key}),
    ):
        tracer, memory = recorder("support-bot")
        workflow(tracer)
        exporter = OTLPSpanExporter(
            endpoint=f"http://127.0.0.1:{port}", headers=headers, compression=grpc.Compression.Gzip
        )
        try:
            assert exporter.export(memory.get_finished_spans()) == SpanExportResult.SUCCESS
        finally:
            exporter.shutdown()
        run = read_run(running.url, reader, trace_id_of(memory.get_finished_spans()))
        nodes = {n["node_id"]: n for n in run["node_executions"]}
        if workflow is genai_workflow:
            assert (run["workflow_id"], run["status"], run["total_tokens"]) == (
                "support",
                "partial-succeeded",
                2000,
            )
            assert set(nodes) == {
                "chat gpt-4o",
                "chat claude",
                "refund",
            }  # a tool is named by gen_ai.tool.name
            chat = nodes["chat gpt-4o"]
            assert (chat["node_type"], chat["prompt_tokens"], chat["completion_tokens"]) == (
                "llm",
                1200,
                300,
            )
            assert nodes["refund"]["error"] == "refund service timed out"
        else:
            assert (run["workflow_id"], run["status"], run["total_tokens"]) == (
                "rag",
                "succeeded",
                1020,
            )
            assert nodes["ChatOpenAI"]["cost"] == pytest.approx(0.000207)
            assert nodes["retrieve"]["node_type"] == "knowledge-retrieval"
        assert run["triggered_from"] == "otlp"


@pytest.mark.e2e
def test_refusals_are_grpc_status_codes_and_partial_success_as_over_http(
    server: tuple[Server, int], make_key: KeyFactory
) -> None:
    _, port = server
    trace_id, spans = workflow_trace()
    message = ExportTraceServiceRequest.FromString(as_protobuf(request(spans)))

    no_key = refusal(export(port, message))
    assert no_key[0] == grpc.StatusCode.UNAUTHENTICATED and "missing API key" in no_key[1]
    unknown = refusal(export(port, message, **bearer("fsk_nope")))
    assert unknown == (grpc.StatusCode.UNAUTHENTICATED, "unknown or revoked API key")
    read_only = refusal(export(port, message, **{"x-flowscope-api-key": make_key("read")}))
    assert read_only[0] == grpc.StatusCode.PERMISSION_DENIED and "'read'" in read_only[1]
    assert retry_delay_s(export(port, message)) is None  # not worth retrying

    # The SDK's exporter gives up at once on UNAUTHENTICATED (it retries only transient codes).
    tracer, memory = recorder("support-bot")
    genai_workflow(tracer)
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}", headers=bearer("fsk_nope"))
    try:
        assert exporter.export(memory.get_finished_spans()) == SpanExportResult.FAILURE
    finally:
        exporter.shutdown()

    ingest = bearer(make_key("ingest"))
    zero = span(trace_id, "0" * 16, "no id", 1, 2, parent=spans[0]["spanId"])
    with_zero = ExportTraceServiceRequest.FromString(as_protobuf(request([*spans, zero])))
    response = export(port, with_zero, **ingest)
    assert isinstance(response, ExportTraceServiceResponse), response
    assert response.partial_success.rejected_spans == 1
    assert "span_id must be 8 bytes, not all zero" in response.partial_success.error_message
    clean = export(port, message, **ingest)
    assert isinstance(clean, ExportTraceServiceResponse)
    assert not clean.HasField("partial_success")

    # Over FLOWSCOPE_MAX_BODY_BYTES: gRPC refuses the message before our code sees it, with
    # RESOURCE_EXHAUSTED and no RetryInfo, which OTLP exporters do not retry.
    huge = span(trace_id, "1" * 16, "x" * (MAX_BODY_BYTES + 1), 1, 2)
    too_big = export(port, ExportTraceServiceRequest.FromString(as_protobuf(request([huge]))))
    code, details = refusal(too_big)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details
    assert retry_delay_s(too_big) is None


@pytest.fixture
def in_process(db_url: str) -> Iterator[tuple[TestClient, int]]:
    """The app in-process (lifespan included) with OTLP/gRPC on a free port."""
    port = free_port()
    settings = Settings(database_url=db_url, auto_migrate=False, otlp_grpc_port=port)
    with TestClient(create_app(settings)) as client:
        yield client, port


def test_overload_is_resource_exhausted_with_retry_info(
    in_process: tuple[TestClient, int], make_key: KeyFactory
) -> None:
    client, port = in_process
    receiver = client.app.state.otlp_receiver  # type: ignore[attr-defined]
    receiver.queue_limit = 0
    receiver.slots = asyncio.Semaphore(0)  # every write slot taken, nobody may wait
    message = ExportTraceServiceRequest.FromString(as_protobuf(request(workflow_trace()[1])))
    outcome = export(port, message, **bearer(make_key("ingest")))
    code, details = refusal(outcome)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "retry later" in details
    assert retry_delay_s(outcome) == 2


def test_a_database_down_is_unavailable_with_retry_info() -> None:
    port = free_port()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    settings = Settings(database_url=url, auto_migrate=False, otlp_grpc_port=port)
    with TestClient(create_app(settings)):
        outcome = export(port, ExportTraceServiceRequest(), **bearer("fsk_x"))
    code, details = refusal(outcome)
    assert code == grpc.StatusCode.UNAVAILABLE and "nothing was stored" in details
    assert retry_delay_s(outcome) == 5


@on_linux
@pytest.mark.e2e
def test_off_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWSCOPE_OTLP_GRPC_PORT", raising=False)
    plain = start_server(["--database-url", f"sqlite:///{tmp_path / 'f.db'}"])
    try:
        assert listening_ports(plain.process.pid) == {int(plain.url.rsplit(":", 1)[1])}
    finally:
        plain.stop()


def test_a_taken_port_is_one_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = flowscope(
            "serve",
            "--database-url",
            f"sqlite:///{tmp_path / 'f.db'}",
            "--port",
            str(free_port()),
            "--otlp-grpc-port",
            str(port),
        )
    assert result.returncode == 1
    assert f"cannot listen for OTLP/gRPC on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
