"""What every emitter scenario shares: the tracer provider, the exporter and the span dump.

Configured only by the environment:

- ``EMITTER_EXPORTER``: ``protobuf`` (default), ``json`` or ``grpc``; the exporter reads the
  standard ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``_HEADERS`` itself, and the resource
  ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``.
- ``EMITTER_DUMP``: a path; every finished span is also written there as JSON.
- ``OPENAI_BASE_URL``, ``OPENAI_API_KEY`` (read by the ``openai`` client), ``FAKE_TOOL_URL``.

A scenario exits 0 only when every batch reached the endpoint (exit 3 otherwise).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from typing import Any
from urllib.parse import urlencode

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

# The distributions whose versions a dump records.
PACKAGES = (
    "openai",
    "langchain-core",
    "langchain-openai",
    "langgraph",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-openai-v2",
    "opentelemetry-instrumentation-httpx",
    "openinference-instrumentation-openai",
    "openinference-instrumentation-langchain",
    "opentelemetry-instrumentation-openai",
    "opentelemetry-instrumentation-langchain",
)
# Settings that change what the instrumentations emit, recorded beside the spans.
SETTINGS_PREFIXES = (
    "OTEL_SEMCONV",
    "OTEL_INSTRUMENTATION_GENAI",
    "TRACELOOP_",
    "OPENINFERENCE_",
    "EMITTER_HTTPX2",
)


class _CheckedExporter(SpanExporter):
    """Delegates to the real exporter and remembers whether any batch failed."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.failed_batches = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        if result is not SpanExportResult.SUCCESS:
            self.failed_batches += 1
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def otlp_exporter(kind: str) -> SpanExporter:
    """The OTLP span exporter for ``EMITTER_EXPORTER``, configured from the environment."""
    if kind == "protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if kind == "json":
        from opentelemetry.exporter.otlp.json.http.trace_exporter import (
            OTLPSpanExporter as JsonExporter,
        )

        return JsonExporter()
    if kind == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter()
    raise SystemExit(f"EMITTER_EXPORTER must be protobuf, json or grpc, not {kind!r}")


def _hex(value: int, digits: int) -> str:
    return format(value, f"0{digits}x")


def _plain(attributes: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in (attributes or {}).items()}


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """One span as a JSON-ready dict (ids in hex, as OTLP JSON writes them)."""
    context, parent = span.get_span_context(), span.parent
    assert context is not None
    scope = span.instrumentation_scope
    return {
        "name": span.name,
        "trace_id": _hex(context.trace_id, 32),
        "span_id": _hex(context.span_id, 16),
        "parent_span_id": _hex(parent.span_id, 16) if parent else None,
        "parent_is_remote": parent.is_remote if parent else None,
        "kind": span.kind.name,
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "status": {"code": span.status.status_code.name, "message": span.status.description},
        "scope": {"name": scope.name, "version": scope.version} if scope else None,
        "attributes": _plain(span.attributes),
        "resource": _plain(span.resource.attributes),
        "events": [
            {"name": e.name, "attributes": _plain(e.attributes)}
            for e in span.events
            if e is not None
        ],
    }


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def write_dump(path: str, scenario: str, exporter: str, spans: Sequence[ReadableSpan]) -> None:
    settings = {k: v for k, v in os.environ.items() if k.startswith(SETTINGS_PREFIXES)}
    document = {
        "scenario": scenario,
        "exporter": exporter,
        "settings": dict(sorted(settings.items())),
        "packages": _versions(),
        "spans": [span_record(s) for s in sorted(spans, key=lambda s: s.start_time or 0)],
    }
    with open(path, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=1, default=str)


@contextmanager
def emitter(scenario: str) -> Iterator[TracerProvider]:
    """Install a global provider exporting to OTLP; flush, shut down and dump on exit."""
    kind = os.environ.get("EMITTER_EXPORTER", "protobuf")
    checked = _CheckedExporter(otlp_exporter(kind))
    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(BatchSpanProcessor(checked))
    memory = InMemorySpanExporter()
    dump = os.environ.get("EMITTER_DUMP")
    if dump:
        provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    try:
        yield provider
    finally:
        flushed = provider.force_flush()
        provider.shutdown()
        if dump:
            write_dump(dump, scenario, kind, memory.get_finished_spans())
    if not flushed or checked.failed_batches:
        print(f"{scenario}: {checked.failed_batches} batch(es) not exported", file=sys.stderr)
        raise SystemExit(3)


def tool_url(name: str, **query: str) -> str:
    """A URL of the fake server's plain JSON endpoint."""
    base = os.environ["FAKE_TOOL_URL"].rstrip("/")
    return f"{base}/{name}" + (f"?{urlencode(query)}" if query else "")
