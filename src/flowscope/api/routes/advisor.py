"""The advisor: workflow graphs (Dify DSL or neutral JSON) and recommendations with their
lifecycle (generate, list, dismiss)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from flowscope import catalog
from flowscope.advisor.generate import generate_recommendations
from flowscope.advisor.lifecycle import dismiss, read_recommendation, read_recommendations
from flowscope.api.body import is_json, media_type, read_body, refuse_nul_in_body
from flowscope.api.deps import (
    AppSettings,
    CanRead,
    DbEngine,
    IsAdmin,
    Prices,
    RowId,
    workflow_scope,
)
from flowscope.api.errors import unprocessable
from flowscope.graphs.dify import parse_dify_dsl
from flowscope.graphs.model import GraphError, WorkflowGraph
from flowscope.graphs.neutral import parse_json_graph
from flowscope.graphs.store import read_graph, write_graph
from flowscope.limits import MAX_ID
from flowscope.performance.window import BadWindow, make_window
from flowscope.schemas.advisor import (
    Category,
    DismissRequest,
    GenerateRequest,
    GenerateResult,
    GraphEdgePublic,
    GraphNodePublic,
    GraphPublic,
    RecommendationDetail,
    RecommendationList,
    Severity,
)
from flowscope.store.engine import write_transaction
from flowscope.timeutil import from_us, now_us

router = APIRouter(prefix="/api/v1", tags=["advisor"])

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
_WORKFLOW = "/apps/{app_id}/workflows/{workflow_id}"
_RECOMMENDATIONS = f"{_WORKFLOW}/optimization/recommendations"
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such app, workflow or recommendation in the caller's tenant"}
}
Version = Annotated[
    str | None,
    Query(max_length=MAX_ID, description="The workflow version the graph is for (default: all)."),
]


def _graph_public(
    app_id: str, workflow_id: str, version: str, graph: WorkflowGraph, updated_us: int
) -> GraphPublic:
    def edge(e: Any) -> GraphEdgePublic:
        return GraphEdgePublic(source=e.source, target=e.target, source_handle=e.source_handle)

    return GraphPublic(
        app_id=app_id,
        workflow_id=workflow_id,
        workflow_version=version or None,
        format=graph.format,  # type: ignore[arg-type]
        dsl_version=graph.dsl_version,
        node_count=len(graph.nodes),
        edge_count=len(graph.edges),
        nodes=[
            GraphNodePublic(
                id=n.id,
                type=n.type,
                title=n.title,
                parent_id=n.parent_id,
                reads=sorted(graph.reads.get(n.id, ())),
            )
            for n in graph.nodes.values()
        ],
        edges=[edge(e) for e in graph.edges],
        independent_edges=[edge(e) for e in graph.independent_edges()],
        updated_at=from_us(updated_us),
    )


def _parse_graph(body: bytes, as_json: bool) -> WorkflowGraph:
    try:
        if as_json:
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise HTTPException(400, f"body is not valid JSON: {exc}") from None
            return parse_json_graph(data)
        return parse_dify_dsl(body)
    except GraphError as exc:
        raise unprocessable(("body",), str(exc), "value_error.graph") from None


@router.put(
    f"{_WORKFLOW}/graph",
    response_model=GraphPublic,
    summary="Register a workflow's graph: a Dify app DSL file (YAML) or a neutral JSON graph",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
    responses={
        400: {"description": "Empty, or JSON that does not parse"},
        413: {"description": "Body over the size limit"},
        415: {"description": "Neither YAML nor JSON"},
        422: {"description": "The graph cannot be read: the detail says why and where"},
    },
)
async def put_graph(
    app_id: str,
    workflow_id: str,
    request: Request,
    principal: IsAdmin,
    engine: DbEngine,
    settings: AppSettings,
    workflow_version: Version = None,
) -> GraphPublic:
    body = await read_body(request, settings.max_body_bytes, also=YAML_TYPES)
    if not body.strip():
        raise HTTPException(400, "request body is empty: send a Dify DSL file or a JSON graph")
    # Parsing a large file takes a while: off the event loop, so other requests go on.
    graph = await run_in_threadpool(_parse_graph, body, is_json(media_type(request)))
    version = workflow_version or ""
    now = now_us()
    await run_in_threadpool(
        _store_graph, engine, principal.tenant_id, (app_id, workflow_id), graph, version, now
    )
    return _graph_public(app_id, workflow_id, version, graph, now)


def _store_graph(
    engine: Engine,
    tenant_id: int,
    workflow: tuple[str, str],
    graph: WorkflowGraph,
    version: str,
    now: int,
) -> None:
    with write_transaction(engine) as conn:
        pks = catalog.ensure_workflows(conn, tenant_id, [workflow], now)
        write_graph(conn, pks[workflow], graph, now, version)


@router.get(
    f"{_WORKFLOW}/graph",
    response_model=GraphPublic,
    summary="A workflow's registered graph with each node's data dependencies",
    responses={404: {"description": "No such workflow, or no graph registered for it"}},
)
def get_graph(
    app_id: str,
    workflow_id: str,
    principal: CanRead,
    engine: DbEngine,
    workflow_version: Version = None,
) -> GraphPublic:
    with workflow_scope(engine, principal.tenant_id, app_id, workflow_id) as (conn, workflow_pk):
        found = read_graph(conn, workflow_pk, workflow_version)
    if found is None:
        raise HTTPException(404, f"no graph registered for {app_id}/{workflow_id}")
    graph, version, updated = found
    return _graph_public(app_id, workflow_id, version, graph, updated)


@router.get(
    _RECOMMENDATIONS,
    response_model=RecommendationList,
    summary="A workflow's recommendations, largest estimated impact first",
    responses=_NOT_FOUND,
)
def list_recommendations(
    app_id: str,
    workflow_id: str,
    principal: CanRead,
    engine: DbEngine,
    category: Category | None = None,
    severity: Severity | None = None,
    status: Annotated[
        Literal["active", "dismissed", "resolved", "all"],
        Query(description="Which recommendations (default: the active ones)."),
    ] = "active",
) -> RecommendationList:
    statuses = ("active", "dismissed", "resolved") if status == "all" else (status,)
    with workflow_scope(engine, principal.tenant_id, app_id, workflow_id) as (conn, workflow_pk):
        data = read_recommendations(
            conn, workflow_pk, statuses=statuses, category=category, severity=severity
        )
    return RecommendationList(count=len(data), data=data)


@router.post(
    _RECOMMENDATIONS,
    dependencies=[Depends(refuse_nul_in_body)],
    response_model=GenerateResult,
    summary="Generate (or regenerate) a workflow's recommendations over the last days",
    responses=_NOT_FOUND,
)
def post_recommendations(
    app_id: str,
    workflow_id: str,
    principal: IsAdmin,
    engine: DbEngine,
    prices: Prices,
    request: Request,
    body: Annotated[GenerateRequest | None, Body()] = None,
) -> GenerateResult:
    asked = body or GenerateRequest()
    try:
        window = make_window(asked.days, None, asked.end, default_days=asked.days)
    except BadWindow as exc:
        raise unprocessable(("body", exc.field), str(exc)) from None
    state = request.app.state
    with workflow_scope(engine, principal.tenant_id, app_id, workflow_id, write=True) as (
        conn,
        workflow_pk,
    ):
        return generate_recommendations(
            conn,
            workflow_pk,
            window,
            thresholds=state.advisor_thresholds,
            prices=prices,
            default_ttls=state.settings.cache_ttl_seconds,
            actor=principal.key_name or None,
            now_us=now_us(),
        )


@router.get(
    f"{_RECOMMENDATIONS}/{{recommendation_id}}",
    response_model=RecommendationDetail,
    summary="One recommendation with its history (created, updated, resolved, dismissed)",
    responses=_NOT_FOUND,
)
def get_recommendation(
    app_id: str, workflow_id: str, recommendation_id: RowId, principal: CanRead, engine: DbEngine
) -> RecommendationDetail:
    with workflow_scope(engine, principal.tenant_id, app_id, workflow_id) as (conn, workflow_pk):
        found = read_recommendation(conn, workflow_pk, recommendation_id)
    if found is None:
        raise HTTPException(404, f"recommendation {recommendation_id} not found")
    return found


@router.post(
    f"{_RECOMMENDATIONS}/{{recommendation_id}}/dismiss",
    dependencies=[Depends(refuse_nul_in_body)],
    response_model=RecommendationDetail,
    summary="Dismiss a recommendation, recording who (the key's name), when and why",
    responses=_NOT_FOUND,
)
def dismiss_recommendation(
    app_id: str,
    workflow_id: str,
    recommendation_id: RowId,
    principal: IsAdmin,
    engine: DbEngine,
    body: Annotated[DismissRequest | None, Body()] = None,
) -> RecommendationDetail:
    reason = (body or DismissRequest()).reason
    with workflow_scope(engine, principal.tenant_id, app_id, workflow_id, write=True) as (
        conn,
        workflow_pk,
    ):
        found = dismiss(
            conn,
            workflow_pk,
            recommendation_id,
            actor=principal.actor,
            reason=reason,
            now_us=now_us(),
        )
    if found is None:
        raise HTTPException(404, f"recommendation {recommendation_id} not found")
    return found
