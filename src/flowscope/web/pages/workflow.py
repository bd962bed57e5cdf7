"""A workflow's page: summary, trends, nodes, bottlenecks, cache and recommendations.

Every figure comes from the service functions behind the REST API, read in one transaction;
the two forms (invalidate the cache, dismiss a recommendation) are for admin viewers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from flowscope import catalog
from flowscope.advisor.lifecycle import dismiss, read_recommendations
from flowscope.appstate import DbEngine, RowId
from flowscope.cache.backends.base import CacheBackend
from flowscope.cache.stats import CacheCounters, read_statistics, read_top_nodes
from flowscope.graphs.store import read_latest_graph
from flowscope.performance.nodes import bottleneck_list, node_list, read_window_figures
from flowscope.performance.summary import read_summary
from flowscope.performance.trends import read_trends
from flowscope.rollups.read import Filters
from flowscope.schemas.advisor import RecommendationPublic
from flowscope.schemas.cache import CacheStatistics, CacheTopNodes
from flowscope.schemas.performance import BottleneckList, NodeList, Summary, Trends
from flowscope.store.engine import read_transaction, write_transaction
from flowscope.tenancy.keys import Principal
from flowscope.timeutil import now_us
from flowscope.web.pages.workflow_figures import (
    cost_chart,
    evidence_rows,
    latency_chart,
    summary_cards,
)
from flowscope.web.templating import (
    templates,
)
from flowscope.web.viewer import AdminViewer, CheckedForm, PageNotFound, Viewer
from flowscope.web.window import WindowChoice, choose_window

router = APIRouter(include_in_schema=False)
Choice = Annotated[WindowChoice, Depends(choose_window)]
PAGE = "/apps/{app_id}/workflows/{workflow_id}"
REC_FILTERS = {
    "active": ("active",),
    "dismissed": ("dismissed",),
    "resolved": ("resolved",),
    "all": ("active", "dismissed", "resolved"),
}
TOP_CACHE_NODES = 10
_DONE = re.compile(r"^(dismissed|invalidated)-(\d{1,9})$|^choose-(node_type|node_id|scope)$")


@dataclass(frozen=True, slots=True)
class WorkflowView:
    """What the page shows, read in one transaction."""

    summary: Summary
    nodes: NodeList
    bottlenecks: BottleneckList
    trends: Trends
    cache: CacheStatistics
    cache_nodes: CacheTopNodes
    recommendations: list[RecommendationPublic]
    has_graph: bool
    titles: dict[str, str] = field(default_factory=dict)


def page_url(app_id: str, workflow_id: str) -> str:
    return PAGE.format(app_id=quote(app_id, safe=""), workflow_id=quote(workflow_id, safe=""))


def _back(app_id: str, workflow_id: str, choice: WindowChoice, anchor: str, **extra: str) -> str:
    query = "&".join(filter(None, (choice.query, urlencode(extra))))
    return f"{page_url(app_id, workflow_id)}?{query}#{anchor}"


@router.get(PAGE, response_class=HTMLResponse)
async def workflow_page(
    request: Request,
    app_id: str,
    workflow_id: str,
    choice: Choice,
    viewer: Viewer,
    engine: DbEngine,
    recs: str = "active",
    done: str = "",
) -> Response:
    state = request.app.state
    view = await run_in_threadpool(
        _read_workflow,
        engine,
        state.cache,
        state.cache_counters,
        viewer.principal.tenant_id,
        app_id,
        workflow_id,
        choice,
    )
    recs = recs if recs in REC_FILTERS else "active"
    currency = view.summary.cost.currency
    context = {
        "viewer": viewer,
        "choice": choice,
        "app_id": app_id,
        "workflow_id": workflow_id,
        "base": page_url(app_id, workflow_id),
        "view": view,
        "cards": summary_cards(view.summary),
        "latency_chart": latency_chart(view.trends, choice),
        "cost_chart": cost_chart(view.trends, choice, currency),
        "currency": currency,
        "recs": recs,
        "rec_counts": {
            name: sum(r.status in statuses for r in view.recommendations)
            for name, statuses in REC_FILTERS.items()
        },
        "shown_recs": [r for r in view.recommendations if r.status in REC_FILTERS[recs]],
        "flash": _flash(done),
        "evidence_rows": partial(evidence_rows, currency=currency),
        "node_types": sorted({n.node_type for n in view.nodes.data if n.node_type}),
        "node_ids": sorted(
            {n.node_id for n in view.nodes.data} | {n.node_id for n in view.cache_nodes.data}
        ),
    }
    return templates.TemplateResponse(request, "workflow.html", context)


def _read_workflow(
    engine: Engine,
    backend: CacheBackend,
    counters: CacheCounters,
    tenant_id: int,
    app_id: str,
    workflow_id: str,
    choice: WindowChoice,
) -> WorkflowView:
    counters.flush(engine)  # this process's latest cache counts, as the cache API does
    window, filters = choice.window, Filters()
    with read_transaction(engine) as conn:
        workflow_pk = catalog.read_workflow_pk(conn, tenant_id, app_id, workflow_id)
        if workflow_pk is None:  # unknown and another tenant's look the same
            raise PageNotFound(f"There is no workflow {app_id}/{workflow_id} in your tenant.")
        merged = read_window_figures(conn, workflow_pk, window, filters)
        nodes = node_list(merged, window)
        return WorkflowView(
            summary=read_summary(conn, workflow_pk, window, filters),
            nodes=nodes,
            bottlenecks=bottleneck_list(merged, window),
            trends=read_trends(conn, workflow_pk, window, filters, granularity=choice.granularity),
            cache=read_statistics(conn, backend, tenant_id, app_id, workflow_id, window),
            cache_nodes=read_top_nodes(
                conn, tenant_id, app_id, workflow_id, window, TOP_CACHE_NODES
            ),
            recommendations=read_recommendations(conn, workflow_pk, statuses=REC_FILTERS["all"]),
            has_graph=read_latest_graph(conn, workflow_pk) is not None,
            titles={n.node_id: n.title for n in nodes.data if n.title},
        )


def _flash(done: str) -> dict[str, str] | None:
    """The outcome of a form, carried back through the redirect's query string, shown in
    the section of the form (`where`)."""
    matched = _DONE.match(done)
    if matched is None:
        return None
    action, number, missing = matched.groups()
    if action == "dismissed":
        text = f"Recommendation {number} dismissed: it is now listed under Dismissed."
        return {"where": "recommendations", "kind": "ok", "text": text}
    if action == "invalidated":
        entries = "entry" if number == "1" else "entries"
        return {"where": "cache", "kind": "ok", "text": f"Invalidated {number} cached {entries}."}
    what = {"node_type": "the node type", "node_id": "the node id"}.get(missing, "what")
    text = f"Nothing was invalidated: choose {what} to invalidate."
    return {"where": "cache", "kind": "error", "text": text}


@router.post(f"{PAGE}/cache/invalidate", dependencies=[CheckedForm])
async def invalidate_cache(
    request: Request,
    app_id: str,
    workflow_id: str,
    viewer: AdminViewer,
    choice: Choice,
    scope: Annotated[str, Form()] = "all",
    node_type: Annotated[str, Form()] = "",
    node_id: Annotated[str, Form()] = "",
) -> Response:
    """Drop cached results of the workflow, as `POST .../cache/invalidate` does."""
    chosen = {"node_type": node_type.strip(), "node_id": node_id.strip(), "all": "all"}.get(scope)
    if not chosen:  # never widen an unclear request to everything
        missing = scope if scope in ("node_type", "node_id") else "scope"
        target = _back(app_id, workflow_id, choice, "cache", done=f"choose-{missing}")
        return RedirectResponse(target, status_code=303)
    selector: dict[str, Any] = {"all": True} if scope == "all" else {scope: chosen}
    backend: CacheBackend = request.app.state.cache
    invalidate = partial(
        backend.invalidate,
        viewer.principal.tenant_id,
        app_id=app_id,
        workflow_id=workflow_id,
        **selector,
    )
    count = await run_in_threadpool(invalidate)
    target = _back(app_id, workflow_id, choice, "cache", done=f"invalidated-{count}")
    return RedirectResponse(target, status_code=303)


@router.post(f"{PAGE}/recommendations/{{recommendation_id}}/dismiss", dependencies=[CheckedForm])
async def dismiss_recommendation(
    app_id: str,
    workflow_id: str,
    recommendation_id: RowId,
    viewer: AdminViewer,
    engine: DbEngine,
    choice: Choice,
    recs: str = "active",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Dismiss with a reason, recording the key's name, as `POST .../dismiss` does."""
    found = await run_in_threadpool(
        _dismiss,
        engine,
        viewer.principal,
        app_id,
        workflow_id,
        recommendation_id,
        reason.strip() or None,
    )
    if not found:
        raise PageNotFound(f"There is no recommendation {recommendation_id} of this workflow.")
    recs = recs if recs in REC_FILTERS else "active"
    target = _back(
        app_id,
        workflow_id,
        choice,
        "recommendations",
        recs=recs,
        done=f"dismissed-{recommendation_id}",
    )
    return RedirectResponse(target, status_code=303)


def _dismiss(
    engine: Engine,
    principal: Principal,
    app_id: str,
    workflow_id: str,
    rec_id: int,
    reason: str | None,
) -> bool:
    with write_transaction(engine) as conn:
        pk = catalog.read_workflow_pk(conn, principal.tenant_id, app_id, workflow_id)
        if pk is None:  # unknown, or another tenant's
            return False
        found = dismiss(conn, pk, rec_id, actor=principal.actor, reason=reason, now_us=now_us())
        return found is not None
