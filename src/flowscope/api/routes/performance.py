"""Analytics: an app's workflows, a workflow's summary, nodes, bottlenecks and trends, and a
run's critical path. Aggregates read rollups only, so they answer in milliseconds at any
volume."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from flowscope.api.deps import CanRead, DbEngine, workflow_scope
from flowscope.api.window import MonthWindow, WeekWindow
from flowscope.performance.nodes import read_bottlenecks, read_nodes
from flowscope.performance.overview import read_workflow_overview
from flowscope.performance.run_path import read_critical_path
from flowscope.performance.summary import read_summary
from flowscope.performance.trends import read_trends
from flowscope.rollups.read import Filters
from flowscope.schemas.performance import (
    BottleneckList,
    NodeList,
    RunCriticalPath,
    Summary,
    Trends,
    WorkflowOverviewList,
)
from flowscope.store.engine import read_transaction

router = APIRouter(prefix="/api/v1", tags=["performance"])

Version = Annotated[str | None, Query(description="Only runs of this workflow version.")]
Trigger = Annotated[str | None, Query(description="Only runs with this triggered_from.")]


def _filters(workflow_version: Version = None, triggered_from: Trigger = None) -> Filters:
    return Filters(workflow_version=workflow_version, triggered_from=triggered_from)


AnyFilters = Annotated[Filters, Depends(_filters)]


_WORKFLOW = "/apps/{app_id}/workflows/{workflow_id}/performance"
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such app or workflow in the caller's tenant"}
}


@router.get(
    "/apps/{app_id}/workflows",
    response_model=WorkflowOverviewList,
    summary="An app's workflows with their headline figures over the window",
    responses=_NOT_FOUND,
)
def list_workflows(
    app_id: str,
    principal: CanRead,
    engine: DbEngine,
    filters: AnyFilters,
    window: WeekWindow,
) -> WorkflowOverviewList:
    with read_transaction(engine) as conn:
        data = read_workflow_overview(conn, principal.tenant_id, app_id, window, filters)
    if data is None:
        raise HTTPException(404, f"app {app_id!r} not found")
    return WorkflowOverviewList(app_id=app_id, window=window.public(), data=data)


@router.get(
    f"{_WORKFLOW}/summary",
    response_model=Summary,
    summary="Runs, success rate, latency percentiles, tokens, cost and cache, against the "
    "previous period",
    responses=_NOT_FOUND,
)
def get_summary(
    app_id: str,
    workflow_id: str,
    principal: CanRead,
    engine: DbEngine,
    filters: AnyFilters,
    window: WeekWindow,
) -> Summary:
    with workflow_scope(engine, principal.tenant_id, app_id, workflow_id) as (conn, workflow_pk):
        return read_summary(conn, workflow_pk, window, filters)


@router.get(
    f"{_WORKFLOW}/nodes",
    response_model=NodeList,
    summary="Figures by node, with each node's share of run time and of the critical path",
    responses=_NOT_FOUND,
)
def get_nodes(
    app_id: str,
    workflow_id: str,
    principal: CanRead,
    engine: DbEngine,
    filters: AnyFilters,
    window: WeekWindow,
) -> NodeList:
    with workflow_scope(engine, principal.tenant_id, app_id, workflow_id) as (conn, workflow_pk):
        return read_nodes(conn, workflow_pk, window, filters)


@router.get(
    f"{_WORKFLOW}/bottlenecks",
    response_model=BottleneckList,
    summary="Nodes ranked by the time they add to runs on the critical path",
    responses=_NOT_FOUND,
)
def get_bottlenecks(
    app_id: str,
    workflow_id: str,
    principal: CanRead,
    engine: DbEngine,
    filters: AnyFilters,
    window: WeekWindow,
    threshold_percentile: Annotated[
        float, Query(gt=0, le=100, description="Which latency percentile to report (0-100].")
    ] = 90.0,
) -> BottleneckList:
    with workflow_scope(engine, principal.tenant_id, app_id, workflow_id) as (conn, workflow_pk):
        return read_bottlenecks(
            conn, workflow_pk, window, filters, threshold_percentile=threshold_percentile
        )


@router.get(
    f"{_WORKFLOW}/trends",
    response_model=Trends,
    summary="Figures by hour or day, and the regressions (change points) found in them",
    responses=_NOT_FOUND,
)
def get_trends(
    app_id: str,
    workflow_id: str,
    principal: CanRead,
    engine: DbEngine,
    filters: AnyFilters,
    window: MonthWindow,
    granularity: Literal["hour", "day"] = "day",
) -> Response:
    with workflow_scope(engine, principal.tenant_id, app_id, workflow_id) as (conn, workflow_pk):
        trends = read_trends(conn, workflow_pk, window, filters, granularity=granularity)
    # Serialised directly: up to 8,760 buckets need no second validation on the way out.
    return Response(trends.model_dump_json(), media_type="application/json")


@router.get(
    "/runs/{run_id}/critical-path",
    response_model=RunCriticalPath,
    summary="A run's critical path, node by node, with each node's slack",
    responses={404: {"description": "No such run in the caller's tenant"}},
)
def get_critical_path(run_id: str, principal: CanRead, engine: DbEngine) -> RunCriticalPath:
    with read_transaction(engine) as conn:
        path = read_critical_path(conn, principal.tenant_id, run_id)
    if path is None:
        raise HTTPException(404, f"run {run_id!r} not found")
    return path
