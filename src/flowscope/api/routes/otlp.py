"""POST /v1/traces: OTLP/HTTP trace ingestion (protobuf or JSON, gzip or not).

Per the OTLP specification the response is in the request's encoding: an
ExportTraceServiceResponse (with `partial_success` when spans were rejected) on 200, a
google.rpc.Status otherwise; 429 and 503 carry Retry-After, which exporters honour.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from flowscope.api.body import is_json, media_type, read_body
from flowscope.api.deps import AppSettings, DbEngine, Prices, get_principal, require
from flowscope.integrations.otlp_decode import BadPayload, decode
from flowscope.integrations.otlp_ingest import ingest_spans

router = APIRouter(tags=["otlp"])

PROTOBUF = "application/x-protobuf"
_RETRY_AFTER_S = "2"
_GRPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    413: code_pb2.INVALID_ARGUMENT,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    503: code_pb2.UNAVAILABLE,
}
_BODY = {
    "requestBody": {
        "required": True,
        "description": "An OTLP ExportTraceServiceRequest; Content-Encoding: gzip accepted.",
        "content": {
            PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


@router.post(
    "/v1/traces",
    summary="Ingest OpenTelemetry traces (OTLP/HTTP): each trace becomes a run",
    response_class=Response,
    openapi_extra=_BODY,
    responses={
        200: {
            "description": "ExportTraceServiceResponse; partial_success counts rejected spans",
            "content": {PROTOBUF: {}, "application/json": {}},
        },
        400: {"description": "Not a decodable ExportTraceServiceRequest (google.rpc.Status)"},
        401: {"description": "No or unknown key (Authorization: Bearer or x-flowscope-api-key)"},
        413: {"description": "Body over the size limit, before or after decompression"},
        415: {"description": "Neither application/x-protobuf nor application/json"},
        429: {"description": "Too many requests waiting; retry after Retry-After seconds"},
    },
)
async def post_traces(
    request: Request,
    engine: DbEngine,
    settings: AppSettings,
    prices: Prices,
    authorization: Annotated[str | None, Header()] = None,
    x_flowscope_api_key: Annotated[str | None, Header()] = None,
) -> Response:
    """Spans of one trace may come in several requests, in any order: the trace's run is
    rebuilt from all of them each time. docs/otlp.md has the attribute mapping."""
    as_json = is_json(media_type(request))
    try:
        principal = await run_in_threadpool(
            lambda: require("ingest")(get_principal(engine, authorization, x_flowscope_api_key))
        )
        body = await read_body(request, settings.max_body_bytes, also=(PROTOBUF,))
    except HTTPException as exc:
        return _status(exc.status_code, str(exc.detail), as_json, dict(exc.headers or {}))
    state = request.app.state
    slots = state.ingest_slots
    if slots.locked() and state.otlp_waiting >= settings.otlp_queue_limit:
        return _status(
            429,
            "too many trace requests waiting; retry later",
            as_json,
            {"Retry-After": _RETRY_AFTER_S},
        )
    state.otlp_waiting += 1
    try:
        await slots.acquire()
    finally:
        state.otlp_waiting -= 1
    try:
        try:
            decoded = await run_in_threadpool(decode, body, json=as_json)
        except BadPayload as exc:
            return _status(400, str(exc), as_json)
        result = await run_in_threadpool(
            lambda: ingest_spans(engine, principal.tenant_id, decoded.spans, prices=prices)
        )
    finally:
        slots.release()
    response = ExportTraceServiceResponse()
    rejected = decoded.rejected + result.rejected_spans
    if rejected:
        errors = decoded.errors + result.errors
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=rejected, error_message="; ".join(errors))
        )
    return _message(200, response, as_json)


def _status(
    code: int, message: str, as_json: bool, headers: dict[str, str] | None = None
) -> Response:
    status = status_pb2.Status(code=_GRPC_CODES.get(code, code_pb2.UNKNOWN), message=message)
    return _message(code, status, as_json, headers)


def _message(
    code: int, message: Message, as_json: bool, headers: dict[str, str] | None = None
) -> Response:
    if as_json:
        content = json_format.MessageToJson(message, indent=None).encode()
        return Response(content, code, headers, media_type="application/json")
    return Response(message.SerializeToString(), code, headers, media_type=PROTOBUF)
