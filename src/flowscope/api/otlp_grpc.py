"""OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export` on its own port.

The server runs in each server process next to uvicorn, on the same event loop, and shares
the process's OtlpReceiver (engine, prices, write slots) with POST /v1/traces; create_app's
lifespan starts and stops it. Several workers each bind the port (SO_REUSEPORT, gRPC's
default) and the kernel spreads connections over them.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from flowscope.integrations.otlp_receive import ExportRefused, OtlpReceiver

# uvicorn configures this logger: the port shows next to "Uvicorn running on ...".
log = logging.getLogger("uvicorn.error")

_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}
# Where the details of a status travel (google.rpc.Status, as grpcio-status writes them), and
# the RetryInfo alone, which OpenTelemetry's Python exporter reads instead.
_STATUS_DETAILS = "grpc-status-details-bin"
_RETRY_INFO = "google.rpc.retryinfo-bin"


class GrpcPortUnavailable(RuntimeError):
    """The OTLP/gRPC port could not be bound (taken, or not an address of this machine)."""


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    """Export: the key from the call's metadata (`authorization: Bearer fsk_...` or
    `x-flowscope-api-key`), then the same intake as POST /v1/traces."""

    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    async def Export(  # the RPC's name, as the generated servicer spells it
        self, request: ExportTraceServiceRequest, context: grpc.aio.ServicerContext
    ) -> ExportTraceServiceResponse:
        metadata = {key: value for key, value in context.invocation_metadata() or ()}
        try:
            principal = await self._receiver.authorize(
                metadata.get("authorization"), metadata.get("x-flowscope-api-key")
            )
            return await self._receiver.export(principal, request)
        except ExportRefused as exc:
            await context.abort(
                _STATUS_CODES[exc.code], str(exc), trailing_metadata=_retry_details(exc)
            )
            raise  # not reached: abort() raises; this tells the type checker
        except Exception:  # a bug of ours: logged here, not told to the client
            log.exception("OTLP/gRPC export failed")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")
            raise


def _retry_details(exc: ExportRefused) -> tuple[tuple[str, bytes], ...]:
    """RetryInfo for refusals worth retrying: without it an OTLP exporter must not retry
    RESOURCE_EXHAUSTED (the specification's rule)."""
    if exc.retry_after_s is None:
        return ()
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.seconds = exc.retry_after_s
    detail = any_pb2.Any()
    detail.Pack(retry)
    status = status_pb2.Status(code=exc.code, message=str(exc), details=[detail])
    return (
        (_STATUS_DETAILS, status.SerializeToString()),
        (_RETRY_INFO, retry.SerializeToString()),
    )


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def start_grpc_server(
    receiver: OtlpReceiver, host: str, port: int, max_message_bytes: int
) -> grpc.aio.Server:
    """Listen for OTLP/gRPC on host:port; raises GrpcPortUnavailable if it cannot bind.

    Messages over `max_message_bytes` (after decompression) are refused by gRPC itself with
    RESOURCE_EXHAUSTED and no RetryInfo, which OTLP exporters do not retry.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.so_reuseport", 1),
        ]
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(receiver), server)
    where = address(host, port)
    try:
        bound = server.add_insecure_port(where)
    except RuntimeError as exc:  # grpcio raises since 1.5x; older ones returned 0
        raise GrpcPortUnavailable(f"cannot listen for OTLP/gRPC on {where}: {exc}") from None
    if bound == 0:
        raise GrpcPortUnavailable(f"cannot listen for OTLP/gRPC on {where}")
    await server.start()
    log.info("OTLP/gRPC (TraceService/Export) listening on %s", where)
    return server
