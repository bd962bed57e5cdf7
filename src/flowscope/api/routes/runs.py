"""Runs: batch ingestion, one run read back, and pages of a workflow's runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from flowscope.api.body import parse_body, read_body
from flowscope.api.deps import AppSettings, CanIngest, CanRead, DbEngine, Prices, workflow_scope
from flowscope.api.errors import unprocessable
from flowscope.ingestion.ingest import PreparedBatch, prepare_batch, write_batch
from flowscope.runs.pricing import PriceBook
from flowscope.runs.read import BadCursor, read_run, read_runs
from flowscope.runs.rows import raw_time_problems
from flowscope.schemas import RUN_BATCH_CREATE, IngestResult, Page, RunPublic, RunStatus
from flowscope.schemas.common import problem_details
from flowscope.schemas.runs import RunSummaryPublic
from flowscope.store.engine import read_transaction, write_transaction

router = APIRouter(prefix="/api/v1", tags=["runs"])

_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/RunBatchCreate"}}
        },
    }
}


def _backwards(payload: object) -> list[dict[str, object]]:
    return problem_details(raw_time_problems(payload), "body")


def _prepare(body: bytes, prices: PriceBook, max_runs: int) -> PreparedBatch:
    """Parse and prepare a batch: all the CPU work, done outside the write transaction.
    Ingestion's IngestRejected becomes a 422 in flowscope.api.errors."""
    batch = parse_body(RUN_BATCH_CREATE, body, _backwards)
    if len(batch["runs"]) > max_runs:
        msg = f"at most {max_runs} runs per request"
        raise unprocessable(("body", "runs"), msg, "too_long")
    return prepare_batch(batch["runs"], prices=prices)


def _write(engine: Engine, tenant_id: int, batch: PreparedBatch) -> IngestResult:
    with write_transaction(engine) as conn:
        return write_batch(conn, tenant_id, batch)


@router.post(
    "/runs",
    response_model=IngestResult,
    summary="Ingest a batch of runs with their node executions (idempotent, atomic)",
    openapi_extra=_BATCH_BODY,
    responses={
        400: {"description": "Body is not JSON"},
        413: {"description": "Body over the size limit"},
        415: {"description": "Not application/json"},
        422: {"description": "A run or node execution is invalid; nothing was stored"},
    },
)
async def post_runs(
    request: Request, principal: CanIngest, engine: DbEngine, settings: AppSettings, prices: Prices
) -> IngestResult:
    body = await read_body(request, settings.max_body_bytes)
    async with request.app.state.ingest_slots:
        batch = await run_in_threadpool(_prepare, body, prices, settings.max_runs_per_request)
        return await run_in_threadpool(_write, engine, principal.tenant_id, batch)


@router.get("/runs/{run_id}", response_model=RunPublic, summary="A run with its node executions")
def get_run(run_id: str, principal: CanRead, engine: DbEngine) -> RunPublic:
    with read_transaction(engine) as conn:
        run = read_run(conn, principal.tenant_id, run_id)
    if run is None:
        raise HTTPException(404, f"run {run_id!r} not found")
    return run


@router.get(
    "/apps/{app_id}/workflows/{workflow_id}/runs",
    response_model=Page[RunSummaryPublic],
    summary="A workflow's runs, newest first, a page at a time",
)
def list_runs(
    app_id: str,
    workflow_id: str,
    principal: CanRead,
    engine: DbEngine,
    settings: AppSettings,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, description="Page size (at most page_size_max).")] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> Page[RunSummaryPublic]:
    if limit > settings.page_size_max:
        msg = f"limit must be at most {settings.page_size_max}"
        raise unprocessable(("query", "limit"), msg, "less_than_equal")
    with workflow_scope(engine, principal.tenant_id, app_id, workflow_id) as (conn, workflow_pk):
        try:
            return read_runs(conn, workflow_pk, status=status, limit=limit, cursor=cursor)
        except BadCursor as exc:
            raise unprocessable(("query", "cursor"), str(exc)) from None
