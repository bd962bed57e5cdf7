"""An app's workflows with their headline figures over a window."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from flowscope import catalog
from flowscope.performance.figures import amount, count, ratio
from flowscope.performance.window import Window
from flowscope.rollups.figures import Figures
from flowscope.rollups.read import Filters, latency, read_run_figures
from flowscope.schemas.performance import TrendLatency, WorkflowOverview
from flowscope.store.tables import App, Workflow, WorkflowRun
from flowscope.timeutil import maybe_from_us


def read_workflow_overview(
    conn: Connection, tenant_id: int, app_id: str, window: Window, filters: Filters
) -> list[WorkflowOverview] | None:
    """None when the tenant has no such app."""
    app_pk = conn.execute(
        select(App.id).where(App.tenant_id == tenant_id, App.app_id == app_id)
    ).scalar_one_or_none()
    if app_pk is None:
        return None
    workflows = conn.execute(
        select(Workflow.id, Workflow.workflow_id)
        .where(Workflow.app_pk == app_pk)
        .order_by(Workflow.workflow_id)
    ).all()
    data = []
    for workflow_pk, workflow_id in workflows:
        versions = catalog.read_versions(conn, workflow_pk)
        last = conn.execute(
            select(func.max(WorkflowRun.started_at_us)).where(
                WorkflowRun.workflow_pk == workflow_pk
            )
        ).scalar_one()
        merged = read_run_figures(conn, workflow_pk, window.start_us, window.end_us, filters)
        f = merged.get(0, Figures())
        histogram = latency(f)
        data.append(
            WorkflowOverview(
                workflow_id=workflow_id,
                versions=list(versions),
                last_run_at=maybe_from_us(last),
                run_count=count(f, "runs"),
                success_rate=ratio(count(f, "succeeded"), count(f, "finished")),
                latency_ms=TrendLatency(p50=histogram.quantile(0.5), p95=histogram.quantile(0.95)),
                cost=amount(f.sums.get("cost", 0.0)),
                currency=f.labels.get("currency", "USD"),
                cache_hit_rate=ratio(count(f, "cache_hits"), count(f, "cache_lookups")),
            )
        )
    return data
