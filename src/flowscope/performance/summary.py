"""A workflow's headline figures over a window, beside the window before."""

from __future__ import annotations

from sqlalchemy import Connection

from flowscope.performance.figures import (
    amount,
    change_pct,
    count,
    ratio,
    run_latency,
    tokens,
)
from flowscope.performance.window import Window
from flowscope.rollups.figures import Figures
from flowscope.rollups.read import Filters, read_run_figures
from flowscope.schemas.performance import (
    CacheFigures,
    Change,
    CostFigures,
    PeriodFigures,
    PreviousPeriod,
    Summary,
)


def period_figures(figures: Figures, window: Window) -> PeriodFigures:
    """The summary figures of merged run rollups (zeros and nulls when empty)."""
    runs = count(figures, "runs")
    cost = amount(figures.sums.get("cost", 0.0))
    hits, lookups = count(figures, "cache_hits"), count(figures, "cache_lookups")
    return PeriodFigures(
        run_count=runs,
        succeeded=count(figures, "succeeded"),
        failed=count(figures, "failed"),
        success_rate=ratio(count(figures, "succeeded"), count(figures, "finished")),
        latency_ms=run_latency(figures),
        tokens=tokens(figures),
        cost=CostFigures(
            total=cost,
            currency=figures.labels.get("currency", "USD"),
            per_run_mean=ratio(cost, runs),
            unpriced_node_executions=count(figures, "unpriced"),
        ),
        cache=CacheFigures(lookups=lookups, hits=hits, hit_rate=ratio(hits, lookups)),
        throughput_per_hour=runs / window.hours,
    )


def read_period(
    conn: Connection, workflow_pk: int, window: Window, filters: Filters
) -> PeriodFigures:
    merged = read_run_figures(conn, workflow_pk, window.start_us, window.end_us, filters)
    return period_figures(merged.get(0, Figures()), window)


def read_summary(conn: Connection, workflow_pk: int, window: Window, filters: Filters) -> Summary:
    """Summary of the window and of the one before, with the change in percent."""
    now = read_period(conn, workflow_pk, window, filters)
    before_window = window.previous()
    before = read_period(conn, workflow_pk, before_window, filters)
    change = Change(
        latency_p95=change_pct(before.latency_ms.p95, now.latency_ms.p95),
        cost=change_pct(before.cost.total, now.cost.total),
        success_rate=change_pct(before.success_rate, now.success_rate),
    )
    previous = PreviousPeriod(
        **before.model_dump(), window=before_window.public(), change_pct=change
    )
    return Summary(**now.model_dump(), window=window.public(), previous_period=previous)
