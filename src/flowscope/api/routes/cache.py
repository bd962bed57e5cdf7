"""The result cache: lookups and stores for engines, policy and invalidation for admins."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from flowscope import catalog
from flowscope.api.body import refuse_nul_in_body
from flowscope.api.deps import CanIngest, CanRead, DbEngine, IsAdmin, workflow_scope
from flowscope.api.errors import unprocessable
from flowscope.api.window import WeekWindow
from flowscope.cache import service
from flowscope.cache.backends.base import CacheBackend
from flowscope.cache.policy import PolicyError, policy_as_dict
from flowscope.cache.stats import CacheCounters, read_statistics, read_top_nodes
from flowscope.schemas.cache import (
    CacheCleaned,
    CacheInvalidated,
    CacheInvalidateRequest,
    CacheLookupRequest,
    CacheLookupResult,
    CacheLookupWithLease,
    CacheStatistics,
    CacheStoreRequest,
    CacheStoreResult,
    CacheTopNodes,
)
from flowscope.store.engine import read_transaction, write_transaction
from flowscope.timeutil import maybe_from_us, now_us

router = APIRouter(prefix="/api/v1", tags=["cache"], dependencies=[Depends(refuse_nul_in_body)])
_WORKFLOW = "/apps/{app_id}/workflows/{workflow_id}/cache"


def _backend(request: Request) -> CacheBackend:
    backend: CacheBackend = request.app.state.cache
    return backend


def _call(body: CacheLookupRequest) -> service.NodeCall:
    return service.NodeCall(
        body.app_id, body.workflow_id, body.node_id, body.node_type, body.config, body.inputs
    )


@router.post("/cache/lookup", response_model=CacheLookupResult, summary="Look a node result up")
def cache_lookup(
    body: CacheLookupWithLease, request: Request, principal: CanIngest, engine: DbEngine
) -> CacheLookupResult:
    with read_transaction(engine) as conn:
        found = service.lookup(
            conn,
            _backend(request),
            principal.tenant_id,
            principal.tenant,
            _call(body),
            request.app.state.cache_counters,
            request.app.state.settings.cache_ttl_seconds,
            body.lease_ms,
        )
    entry = found.entry
    return CacheLookupResult(
        hit=found.hit,
        key=found.key,
        cacheable=found.cacheable,
        reason=found.reason,
        value=orjson.loads(entry.value) if entry is not None else None,
        expires_at=maybe_from_us(entry.expires_at_us) if entry is not None else None,
        lease=found.lease,
    )


@router.post("/cache/store", response_model=CacheStoreResult, summary="Store a node result")
def cache_store(
    body: CacheStoreRequest, request: Request, principal: CanIngest, engine: DbEngine
) -> CacheStoreResult:
    with read_transaction(engine) as conn:
        stored = service.store(
            conn,
            _backend(request),
            principal.tenant_id,
            principal.tenant,
            _call(body),
            body.value,
            status=body.status,
            elapsed_ms=body.elapsed_ms,
            cost=body.cost,
            counters=request.app.state.cache_counters,
            default_ttls=request.app.state.settings.cache_ttl_seconds,
        )
    return CacheStoreResult(
        stored=stored.stored,
        key=stored.key,
        expires_at=maybe_from_us(stored.expires_at_us),
        reason=stored.reason,
    )


@router.get(
    f"{_WORKFLOW}/policy",
    summary="The workflow's cache policy, defaults filled in",
    responses={404: {"description": "No such workflow: no runs, cache use or policy yet"}},
)
def get_policy(
    app_id: str, workflow_id: str, principal: IsAdmin, engine: DbEngine
) -> dict[str, Any]:
    with workflow_scope(engine, principal.tenant_id, app_id, workflow_id) as (conn, pk):
        return policy_as_dict(service.read_policy(conn, pk))


@router.put(
    f"{_WORKFLOW}/policy",
    summary="Change the workflow's cache policy (fields left out keep their values)",
    responses={422: {"description": "An unknown field or a bad TTL, named"}},
)
def put_policy(
    app_id: str,
    workflow_id: str,
    principal: IsAdmin,
    engine: DbEngine,
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {"enabled": True, "nodes": {"llm_1": {"cacheable": True, "ttl_seconds": 600}}}
            ]
        ),
    ],
) -> dict[str, Any]:
    try:
        with write_transaction(engine) as conn:
            pks = catalog.ensure_workflows(
                conn, principal.tenant_id, {(app_id, workflow_id)}, now_us()
            )
            policy = service.write_policy(conn, pks[(app_id, workflow_id)], body)
    except PolicyError as error:
        raise unprocessable(("body",), str(error)) from None
    return policy_as_dict(policy)


@router.post(
    f"{_WORKFLOW}/invalidate",
    response_model=CacheInvalidated,
    summary="Drop cached results of the workflow: by node type, node id, key, or all",
    responses={404: {"description": "No such workflow: no runs, cache use or policy yet"}},
)
async def invalidate(
    app_id: str,
    workflow_id: str,
    body: CacheInvalidateRequest,
    request: Request,
    principal: IsAdmin,
    engine: DbEngine,
) -> CacheInvalidated:
    chosen = [name for name in ("node_type", "node_id", "key") if getattr(body, name) is not None]
    if len(chosen) + body.all != 1:
        msg = "give exactly one of node_type, node_id, key, or all: true"
        raise unprocessable(("body",), msg)
    await run_in_threadpool(
        _known_workflow, request, engine, principal.tenant_id, app_id, workflow_id
    )
    # Entries are keyed by the tenant and the workflow's ids: no catalog entry is needed.
    count = await run_in_threadpool(
        _backend(request).invalidate,
        principal.tenant_id,
        app_id=app_id,
        workflow_id=workflow_id,
        node_type=body.node_type,
        node_id=body.node_id,
        key=body.key,
        all=body.all,
    )
    return CacheInvalidated(invalidated=count)


@router.post(
    f"{_WORKFLOW}/cleanup",
    response_model=CacheCleaned,
    summary="Remove expired entries (the server also does this periodically)",
)
async def cleanup(
    app_id: str, workflow_id: str, request: Request, principal: IsAdmin
) -> CacheCleaned:
    # Expired entries are garbage whoever owns them: the count is server-wide.
    return CacheCleaned(removed=await run_in_threadpool(_backend(request).cleanup))


def _flush(request: Request, engine: Engine) -> None:
    counters: CacheCounters = request.app.state.cache_counters
    counters.flush(engine)  # this process's latest counts; others flush every few seconds


def _known_workflow(
    request: Request, engine: Engine, tenant_id: int, app_id: str, workflow_id: str
) -> None:
    """404 unless the tenant has the workflow; the cache's latest counts, flushed first,
    make a workflow known that so far only used the cache."""
    counters: CacheCounters = request.app.state.cache_counters
    counters.flush(engine)
    with workflow_scope(engine, tenant_id, app_id, workflow_id):
        pass


@router.get(
    f"{_WORKFLOW}/statistics",
    response_model=CacheStatistics,
    summary="Lookups, hits, hit rate, entries, and the time and money the cache saved",
    responses={404: {"description": "No such workflow: no runs, cache use or policy yet"}},
)
def cache_statistics(
    app_id: str,
    workflow_id: str,
    request: Request,
    principal: CanRead,
    engine: DbEngine,
    window: WeekWindow,
) -> CacheStatistics:
    _flush(request, engine)
    with workflow_scope(engine, principal.tenant_id, app_id, workflow_id) as (conn, _):
        return read_statistics(
            conn, _backend(request), principal.tenant_id, app_id, workflow_id, window
        )


@router.get(
    f"{_WORKFLOW}/top-nodes",
    response_model=CacheTopNodes,
    summary="The workflow's nodes by cache hits, with their hit rate and savings",
    responses={404: {"description": "No such workflow: no runs, cache use or policy yet"}},
)
def cache_top_nodes(
    app_id: str,
    workflow_id: str,
    request: Request,
    principal: CanRead,
    engine: DbEngine,
    window: WeekWindow,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> CacheTopNodes:
    _flush(request, engine)
    with workflow_scope(engine, principal.tenant_id, app_id, workflow_id) as (conn, _):
        return read_top_nodes(conn, principal.tenant_id, app_id, workflow_id, window, limit)
