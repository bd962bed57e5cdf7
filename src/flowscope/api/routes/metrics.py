"""GET /metrics: flowscope's figures in the Prometheus text format."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from prometheus_client import CONTENT_TYPE_LATEST

from flowscope.api.deps import AppSettings, DbEngine, get_principal, require
from flowscope.metrics.prometheus import collect, render
from flowscope.store.engine import read_transaction

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="Per-workflow and per-node counters and latency histograms for Prometheus",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
        401: {"description": "No or unknown key (unless FLOWSCOPE_METRICS_PUBLIC is on)"},
    },
)
def get_metrics(
    engine: DbEngine,
    settings: AppSettings,
    authorization: Annotated[str | None, Header()] = None,
    x_flowscope_api_key: Annotated[str | None, Header()] = None,
) -> Response:
    """With a `read` (or `admin`) key: the key's tenant. With FLOWSCOPE_METRICS_PUBLIC on and
    no key: every tenant (the `tenant` label tells them apart)."""
    tenant_id: int | None = None
    if authorization or x_flowscope_api_key or not settings.metrics_public:
        principal = require("read")(get_principal(engine, authorization, x_flowscope_api_key))
        tenant_id = principal.tenant_id
    with read_transaction(engine) as conn:
        families = collect(conn, tenant_id)
    return Response(render(families), media_type=CONTENT_TYPE_LATEST)
