"""An OTLP trace receiver that accepts everything: OTLP/HTTP (protobuf or JSON) and OTLP/gRPC.

It records what each export carried, so a harness can check that an emitter delivered its
spans without running flowscope; tests of the mapping send to a real `flowscope serve`.

>>> with OtlpSink() as sink:
...     env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sink.http_endpoint}
...     ...
...     sink.span_count()
"""

from __future__ import annotations

import gzip
import json
import threading
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


@dataclass(frozen=True)
class Export:
    transport: str  # "http" or "grpc"
    content_type: str  # "application/x-protobuf", "application/json", "grpc"
    span_count: int


def _protobuf_spans(request: trace_service_pb2.ExportTraceServiceRequest) -> int:
    return sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)


def _json_spans(body: dict[str, Any]) -> int:
    return sum(
        len(s.get("spans", []))
        for r in body.get("resourceSpans", [])
        for s in r.get("scopeSpans", [])
    )


class OtlpSink:
    """Both receivers on free 127.0.0.1 ports; started on enter, stopped on exit."""

    def __init__(self) -> None:
        self._exports: list[Export] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _HttpHandler)
        self._httpd.daemon_threads = True
        self._httpd.sink = self  # type: ignore[attr-defined]
        self._http_thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), daemon=True
        )
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_GrpcService(self), self._grpc)
        self._grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1/traces"

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self._grpc_port}"

    @property
    def exports(self) -> list[Export]:
        with self._lock:
            return list(self._exports)

    def span_count(self) -> int:
        return sum(e.span_count for e in self.exports)

    def record(self, export: Export) -> None:
        with self._lock:
            self._exports.append(export)

    def __enter__(self) -> OtlpSink:
        self._http_thread.start()
        self._grpc.start()
        return self

    def __exit__(
        self, exc: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._grpc.stop(grace=None)


class _GrpcService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: OtlpSink) -> None:
        self.sink = sink

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.sink.record(Export("grpc", "grpc", _protobuf_spans(request)))
        return trace_service_pb2.ExportTraceServiceResponse()


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        content_type = self.headers.get("Content-Type", "").split(";")[0]
        if content_type == "application/json":
            count, answer = _json_spans(json.loads(body)), b"{}"
        else:
            request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
            count, answer = _protobuf_spans(request), b""
        self.server.sink.record(Export("http", content_type, count))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", content_type or "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
