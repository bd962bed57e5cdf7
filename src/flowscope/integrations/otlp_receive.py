"""One OTLP trace export, whatever the transport: the key, a write slot, decoding, ingestion
and the response with its partial_success.

POST /v1/traces (api/routes/otlp.py) and the gRPC TraceService (api/otlp_grpc.py) are thin
around `OtlpReceiver`: they hand it the credentials and the request, and turn an
`ExportRefused` into their status (an HTTP status with a google.rpc.Status body, or a gRPC
status code) by its google.rpc code.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from google.rpc import code_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from flowscope.integrations.otlp_decode import BadPayload, Decoded, decode, decode_request
from flowscope.integrations.otlp_ingest import SpanIngestResult, ingest_spans
from flowscope.runs.pricing import PriceBook
from flowscope.tenancy.credentials import (
    KeyRejected,
    NotPermitted,
    principal_from_headers,
    require_permission,
)
from flowscope.tenancy.keys import Principal

log = logging.getLogger("flowscope.otlp")

OVERLOADED_RETRY_AFTER_S = 2
UNAVAILABLE_RETRY_AFTER_S = 5
# The database cannot be reached (or SQLite stayed locked): nothing was stored, retry.
_DATABASE_DOWN = (OperationalError, InterfaceError)


class ExportRefused(Exception):
    """An export refused as a whole: its google.rpc code (INVALID_ARGUMENT, UNAUTHENTICATED,
    PERMISSION_DENIED, RESOURCE_EXHAUSTED, UNAVAILABLE) and, when a retry may succeed, after
    how many seconds."""

    def __init__(self, code: int, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after_s = retry_after_s


@dataclass
class OtlpReceiver:
    """A server process's OTLP intake, shared by its HTTP and gRPC listeners.

    `slots` are the process's write slots (POST /api/v1/runs takes them too); at most
    `queue_limit` exports wait for one, later ones are refused with RESOURCE_EXHAUSTED.
    """

    engine: Engine
    prices: PriceBook
    slots: asyncio.Semaphore
    queue_limit: int
    waiting: int = 0

    async def authorize(self, authorization: str | None, api_key: str | None) -> Principal:
        """The principal of an ingest (or admin) key, from `authorization: Bearer fsk_...` or
        `x-flowscope-api-key: fsk_...`."""
        try:
            principal = await asyncio.to_thread(
                principal_from_headers, self.engine, authorization, api_key
            )
            return require_permission(principal, "ingest")
        except KeyRejected as exc:
            raise ExportRefused(code_pb2.UNAUTHENTICATED, str(exc)) from None
        except NotPermitted as exc:
            raise ExportRefused(code_pb2.PERMISSION_DENIED, str(exc)) from None
        except _DATABASE_DOWN as exc:
            raise _unavailable(exc) from None

    async def export(
        self,
        principal: Principal,
        request: ExportTraceServiceRequest | bytes,
        *,
        json: bool = False,
    ) -> ExportTraceServiceResponse:
        """Ingest the request's spans into the principal's tenant.

        `request` is parsed already (gRPC) or a body (HTTP: protobuf, or OTLP JSON when
        `json`), which is parsed only once a write slot is held: an overloaded server refuses
        it before spending any work on it.
        """
        await self._take_slot()
        try:
            # Decoding and ingestion run in one worker thread, which gives the slot back when
            # it ends: a caller that goes away meanwhile (a gRPC deadline) cannot free it
            # while the thread still writes.
            work = asyncio.get_running_loop().run_in_executor(
                None, self._ingest, principal.tenant_id, request, json
            )
        except BaseException:
            self.slots.release()
            raise
        work.add_done_callback(lambda _: self.slots.release())
        try:
            decoded, result = await asyncio.shield(work)
        except BadPayload as exc:
            raise ExportRefused(code_pb2.INVALID_ARGUMENT, str(exc)) from None
        except _DATABASE_DOWN as exc:
            raise _unavailable(exc) from None
        return _response(decoded, result)

    async def _take_slot(self) -> None:
        if self.slots.locked() and self.waiting >= self.queue_limit:
            raise ExportRefused(
                code_pb2.RESOURCE_EXHAUSTED,
                "too many trace requests waiting; retry later",
                OVERLOADED_RETRY_AFTER_S,
            )
        self.waiting += 1
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1

    def _ingest(
        self, tenant_id: int, request: ExportTraceServiceRequest | bytes, json: bool
    ) -> tuple[Decoded, SpanIngestResult]:
        if isinstance(request, bytes):
            decoded = decode(request, json=json)
        else:
            decoded = decode_request(request)
        return decoded, ingest_spans(self.engine, tenant_id, decoded.spans, prices=self.prices)


def _response(decoded: Decoded, result: SpanIngestResult) -> ExportTraceServiceResponse:
    """The OTLP response: partial_success only when spans were rejected, with the first
    reasons (decoding's, then ingestion's)."""
    response = ExportTraceServiceResponse()
    rejected = decoded.rejected + result.rejected_spans
    if rejected:
        errors = decoded.errors + result.errors
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=rejected, error_message="; ".join(errors))
        )
    return response


def _unavailable(exc: Exception) -> ExportRefused:
    log.warning("database unavailable during an OTLP export: %s", exc)
    return ExportRefused(
        code_pb2.UNAVAILABLE,
        "the database is unavailable; nothing was stored, retry later",
        UNAVAILABLE_RETRY_AFTER_S,
    )
