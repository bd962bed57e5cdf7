"""OTLP/HTTP trace requests (protobuf or JSON) decoded into flat span records.

Both encodings are parsed into `opentelemetry-proto`'s ExportTraceServiceRequest, so one
walker reads them. OTLP's JSON differs from protobuf's canonical JSON mapping in its ids
(hex, not base64); exporters also send base64 ids, snake_case keys, enum names or numbers,
int64 as strings or numbers, and the pre-1.0 `instrumentationLibrarySpans`: all are accepted.

A record keeps only what the mapping (flowscope.integrations.otlp_mapping) reads: prompts
and completions never reach the database, an input's content only as its SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from flowscope.integrations.dify_rows import json_hash as canonical_json_hash
from flowscope.limits import MAX_ERROR, MAX_ID

# Span attributes the mapping reads; keys under these prefixes are kept too.
KEPT_ATTRIBUTES = frozenset(
    {
        "gen_ai.operation.name",
        "gen_ai.workflow.name",
        "gen_ai.agent.name",
        "gen_ai.tool.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.provider.name",
        "gen_ai.system",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
        "gen_ai.usage.total_tokens",
        "openinference.span.kind",
        "llm.model_name",
        "llm.provider",
        "llm.system",
        "llm.token_count.prompt",
        "llm.token_count.completion",
        "llm.token_count.total",
        "llm.cost.total",
        "embedding.model_name",
        "tool.name",
        "traceloop.span.kind",
        "traceloop.entity.name",
        "traceloop.entity.path",
        "traceloop.workflow.name",
        "error.type",
        "error.message",
        "http.request.method",
        "http.method",
        "db.system",
        "db.system.name",
        "service.name",
        "service.version",
        # Dify's legacy Arize Phoenix provider marks its root span with these.
        "dify_trace_id",
        "dify_project_name",
    }
)
KEPT_PREFIXES = ("flowscope.", "dify.")
# Content under the kept prefixes that is never stored (Dify's export of inputs and outputs).
SKIPPED = frozenset({"dify.inputs", "dify.outputs", "dify.events", "dify.usage"})
# JSON strings whose `model` is read (a failed call reports its model nowhere else).
INVOCATION_PARAMETERS = ("llm.invocation_parameters", "embedding.invocation_parameters")
# `metadata` is a JSON string (OpenInference, Dify): only these of its keys are kept, as
# `metadata.<key>`; a nested `metadata` object (Dify's newer export) fills in the same keys.
METADATA = "metadata"
METADATA_KEYS = frozenset(
    {
        # Dify: the run
        "workflow_run_id",
        "workflow_id",
        "app_id",
        "version",
        "status",
        "triggered_from",
        "elapsed_time",
        "workflow_run_status",
        # Dify: a node execution
        "node_id",
        "node_execution_id",
        "node_type",
        "node_status",
        "status_message",
        "app_name",
        "predecessor_node_id",
        "model_provider",
        "model_name",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "total_price",
        "currency",
        "iteration_id",
        "iteration_index",
        "loop_id",
        "loop_index",
        "wrapper_type",
        "wrapper_index",
        "container_execution_id",
        "synthetic",
        # LangChain / LangGraph (OpenInference)
        "langgraph_node",
        "langgraph_step",
        "ls_model_name",
        "ls_provider",
    }
)
# Inputs whose content is hashed (repeated-input detection), never stored.
HASHED_INPUTS = ("input.value", "gen_ai.input.messages")
_MAX_TEXT = 1000
_MAX_JSON = 1_000_000  # a longer `metadata` or parameters string is not parsed
_STATUS_ERROR = 2
# Span flags (OTLP 1.1+): bit 8 says whether bit 9 is known; bit 9, the parent is remote.
_PARENT_IS_REMOTE = 0x300


class BadPayload(ValueError):
    """The body is not an OTLP ExportTraceServiceRequest in the declared encoding."""


@dataclass
class Decoded:
    """The request's spans as records, and the spans rejected with why."""

    spans: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < 5:
            self.errors.append(message)


def decode(body: bytes, *, json: bool) -> Decoded:
    """Spans of an OTLP/HTTP request body; raises BadPayload when it cannot be read at all."""
    request = _parse_json(body) if json else _parse_protobuf(body)
    return decode_request(request)


def _parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    try:
        return ExportTraceServiceRequest.FromString(body)
    except DecodeError as exc:
        raise BadPayload(f"body is not a protobuf ExportTraceServiceRequest: {exc}") from None


def _parse_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadPayload(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadPayload("body must be a JSON object with resourceSpans")
    _normalise_json(document)
    try:
        return json_format.ParseDict(
            document, ExportTraceServiceRequest(), ignore_unknown_fields=True
        )
    except json_format.ParseError as exc:
        raise BadPayload(f"body is not an OTLP ExportTraceServiceRequest: {exc}") from None


_ID_KEYS = {"traceId": 16, "trace_id": 16, "spanId": 8, "span_id": 8}
_PARENT_KEYS = ("parentSpanId", "parent_span_id")


def _normalise_json(document: dict[str, Any]) -> None:
    """Turn OTLP JSON into protobuf's canonical JSON in place: hex ids to base64, and the
    pre-1.0 names of scope spans."""
    for resource_spans in _items(document, "resourceSpans", "resource_spans"):
        for old in ("instrumentationLibrarySpans", "instrumentation_library_spans"):
            if old in resource_spans and not _items(resource_spans, "scopeSpans", "scope_spans"):
                resource_spans["scopeSpans"] = resource_spans.pop(old)
        for scope_spans in _items(resource_spans, "scopeSpans", "scope_spans"):
            if "instrumentationLibrary" in scope_spans:
                scope_spans.setdefault("scope", scope_spans.pop("instrumentationLibrary"))
            for span in _items(scope_spans, "spans"):
                _ids_to_base64(span)
                for link in _items(span, "links"):
                    _ids_to_base64(link)


def _items(parent: dict[str, Any], *keys: str) -> list[Any]:
    for key in keys:
        value = parent.get(key)
        if isinstance(value, list):
            return [item for item in value if isinstance(item, dict)]
    return []


def _ids_to_base64(item: dict[str, Any]) -> None:
    for key, size in _ID_KEYS.items():
        if key in item:
            item[key] = _id_as_base64(item[key], size)
    for key in _PARENT_KEYS:
        if key in item:
            item[key] = _id_as_base64(item[key], 8)


def _id_as_base64(value: Any, size: int) -> Any:
    """Hex ids (OTLP JSON) as base64 (protobuf JSON); base64 ones and empty ones unchanged."""
    if isinstance(value, str) and len(value) == 2 * size:
        try:
            return base64.b64encode(bytes.fromhex(value)).decode()
        except ValueError:
            return value
    return value


def decode_request(request: ExportTraceServiceRequest) -> Decoded:
    """Spans of a parsed request (as gRPC delivers it), with the rejected ones counted."""
    out = Decoded()
    for resource_spans in request.resource_spans:
        resource, _ = _kept(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = _clean(scope_spans.scope.name[:_MAX_TEXT])
            for span in scope_spans.spans:
                record = _record(span, resource, out)
                if record is not None:
                    if scope:
                        record["sc"] = scope  # which instrumentation reported it
                    out.spans.append(record)
    return out


def _record(span: Any, resource: dict[str, Any], out: Decoded) -> dict[str, Any] | None:
    trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_span_id
    if len(trace_id) != 16 or not any(trace_id):
        out.reject(f"span {span.name!r}: trace_id must be 16 bytes, not all zero")
        return None
    if len(span_id) != 8 or not any(span_id):
        out.reject(f"span {span.name!r}: span_id must be 8 bytes, not all zero")
        return None
    if parent_id and len(parent_id) != 8:
        out.reject(f"span {span_id.hex()}: parent_span_id must be 8 bytes or empty")
        return None
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if start == 0:
        out.reject(f"span {span_id.hex()}: start_time_unix_nano is missing")
        return None
    if end and end < start:
        out.reject(f"span {span_id.hex()}: end_time_unix_nano is before start_time_unix_nano")
        return None
    attributes, input_hash = _kept(span.attributes)
    error = span.status.code == _STATUS_ERROR
    message = span.status.message or (_exception_message(span) if error else "")
    record: dict[str, Any] = {
        "t": trace_id.hex(),
        "s": span_id.hex(),
        "p": parent_id.hex() if parent_id and any(parent_id) else None,
        "name": _clean((span.name or "span")[:MAX_ID]),
        "start": start,
        "end": end or None,
        "a": attributes,
        "r": resource,
    }
    if error:
        record["err"] = True
    if message:
        record["msg"] = _clean(message[:MAX_ERROR])
    if input_hash:
        record["h"] = input_hash
    if span.flags & _PARENT_IS_REMOTE == _PARENT_IS_REMOTE:
        record["remote"] = True
    return record


def _kept(attributes: Any) -> tuple[dict[str, Any], str | None]:
    """The attributes the mapping reads, and the SHA-256 of the input, in one pass."""
    kept: dict[str, Any] = {}
    raw_input = None
    for kv in attributes:
        key = kv.key
        if key in KEPT_ATTRIBUTES or (key.startswith(KEPT_PREFIXES) and key not in SKIPPED):
            value = _scalar(kv)
            if value is not None:
                kept[key] = value
        elif key == METADATA:
            _keep_metadata(kv.value.string_value, kept)
        elif key in INVOCATION_PARAMETERS:
            model = _json_object(kv.value.string_value).get("model")
            if isinstance(model, str) and model:
                kept[f"{key}.model"] = _clean(model[:_MAX_TEXT])
        elif key in HASHED_INPUTS and raw_input is None:
            raw_input = kv.value
    if raw_input is None:
        return kept, None
    # Dify's spans carry inputs as JSON written by Python: hashed in their canonical form,
    # as the Dify import hashes the same inputs from its database.
    return kept, _hash(raw_input, canonical=_is_dify(kept))


def _is_dify(kept: dict[str, Any]) -> bool:
    return any(key in kept for key in _DIFY_MARKS)


_DIFY_MARKS = (
    "dify.span.id",
    "dify.workflow.run_id",
    "dify.node.execution_id",
    "metadata.workflow_run_id",
    "metadata.node_type",
)


def _keep_metadata(text: str, kept: dict[str, Any]) -> None:
    document = _json_object(text)
    nested = document.get(METADATA)
    for source in (document, nested if isinstance(nested, dict) else {}):
        for key, value in source.items():
            if key in METADATA_KEYS and f"metadata.{key}" not in kept:
                if isinstance(value, str):
                    kept[f"metadata.{key}"] = _clean(value[:_MAX_TEXT])
                elif isinstance(value, int | float | bool):
                    kept[f"metadata.{key}"] = value


def _json_object(text: str) -> dict[str, Any]:
    if not text or len(text) > _MAX_JSON or not text.startswith("{"):
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _clean(text: str) -> str:
    """Text as PostgreSQL can store it: NUL characters (which no instrumentation means to
    send, and which PostgreSQL refuses) become U+FFFD, the replacement character. A trace is
    never refused for them: the exporter could not do better on a retry."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _scalar(kv: KeyValue) -> Any:
    value = kv.value
    which = value.WhichOneof("value")
    if which == "string_value":
        return _clean(value.string_value[:_MAX_TEXT])
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    return None  # arrays, maps and bytes: nothing the mapping reads


def _hash(value: Any, *, canonical: bool = False) -> str:
    if value.WhichOneof("value") != "string_value":
        return hashlib.sha256(value.SerializeToString()).hexdigest()
    text = value.string_value
    if canonical:
        digest = canonical_json_hash(text)
        if digest is not None:
            return digest
    return hashlib.sha256(text.encode()).hexdigest()


def _exception_message(span: Any) -> str:
    """The message of the span's last `exception` event, when its status has none."""
    for event in reversed(span.events):
        if event.name == "exception":
            for kv in event.attributes:
                if kv.key == "exception.message":
                    return str(kv.value.string_value)
            for kv in event.attributes:
                if kv.key == "exception.type":
                    return str(kv.value.string_value)
    return ""
