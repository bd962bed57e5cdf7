"""POST /v1/traces: OTLP/HTTP trace ingestion (protobuf or JSON, gzip or not).

Per the OTLP specification the response is in the request's encoding: an
ExportTraceServiceResponse (with `partial_success` when spans were rejected) on 200, a
google.rpc.Status otherwise; 429 and 503 carry Retry-After, which exporters honour.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, Response
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from flowscope.api.body import is_json, media_type, read_body
from flowscope.api.deps import AppSettings
from flowscope.integrations.otlp_receive import ExportRefused, OtlpReceiver

router = APIRouter(tags=["otlp"])

PROTOBUF = "application/x-protobuf"
# The HTTP status of each refusal (integrations/otlp_receive.py); gRPC sends the code itself.
_HTTP_STATUS = {
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.UNAVAILABLE: 503,
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
    settings: AppSettings,
    authorization: Annotated[str | None, Header()] = None,
    x_flowscope_api_key: Annotated[str | None, Header()] = None,
) -> Response:
    """Spans of one trace may come in several requests, in any order: the trace's run is
    rebuilt from all of them each time. docs/otlp.md has the attribute mapping."""
    as_json = is_json(media_type(request))
    receiver: OtlpReceiver = request.app.state.otlp_receiver
    try:
        principal = await receiver.authorize(authorization, x_flowscope_api_key)
        body = await read_body(request, settings.max_body_bytes, also=(PROTOBUF,))
        response = await receiver.export(principal, body, json=as_json)
    except HTTPException as exc:  # the body's: 400, 413 or 415
        status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=str(exc.detail))
        return _message(exc.status_code, status, as_json)
    except ExportRefused as exc:
        return _refused(exc, as_json)
    return _message(200, response, as_json)


def _refused(exc: ExportRefused, as_json: bool) -> Response:
    headers = {}
    if exc.code == code_pb2.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = "Bearer"
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(exc.retry_after_s)
    status = status_pb2.Status(code=exc.code, message=str(exc))
    return _message(_HTTP_STATUS[exc.code], status, as_json, headers)


def _message(
    code: int, message: Message, as_json: bool, headers: dict[str, str] | None = None
) -> Response:
    if as_json:
        content = json_format.MessageToJson(message, indent=None).encode()
        return Response(content, code, headers, media_type="application/json")
    return Response(message.SerializeToString(), code, headers, media_type=PROTOBUF)
