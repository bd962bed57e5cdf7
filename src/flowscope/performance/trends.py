"""A workflow's figures bucket by bucket, and the regressions found in them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from sqlalchemy import Connection

from flowscope.performance.figures import amount, count, ratio
from flowscope.performance.regressions import change_points
from flowscope.performance.window import Window
from flowscope.rollups.figures import Figures
from flowscope.rollups.read import Filters, latency, read_node_sums, read_run_figures
from flowscope.schemas.performance import Regression, TrendBucket, TrendLatency, Trends
from flowscope.timeutil import DAY_US, HOUR_US, from_us

GRANULARITIES = {"hour": HOUR_US, "day": DAY_US}
NODE_SERIES = 5
"""Per-node latency series are searched for the nodes with the most critical-path time."""
MIN_NODE_SHARE = 0.05

_RUN_METRICS: dict[str, Callable[[TrendBucket], float | None]] = {
    "latency_p50_ms": lambda b: b.latency_ms.p50,
    "latency_p95_ms": lambda b: b.latency_ms.p95,
    "error_rate": lambda b: b.error_rate,
    "cost_per_run": lambda b: b.cost / b.run_count if b.run_count else None,
    "tokens_per_run": lambda b: b.tokens / b.run_count if b.run_count else None,
}


def read_trends(
    conn: Connection, workflow_pk: int, window: Window, filters: Filters, *, granularity: str
) -> Trends:
    step = GRANULARITIES[granularity]
    merged = read_run_figures(
        conn, workflow_pk, window.start_us, window.end_us, filters, bucket_us=step
    )
    starts = list(range(window.start_us // step * step, window.end_us, step))
    buckets = [_bucket(start, merged.get(start, Figures())) for start in starts]
    hours = [start // HOUR_US % 24 for start in starts] if step == HOUR_US else None
    regressions: list[Regression] = []
    for metric, value_of in _RUN_METRICS.items():
        series = [_value(value_of(b)) for b in buckets]
        regressions += _regressions(metric, None, series, starts, hours)
    regressions += _node_regressions(conn, workflow_pk, window, filters, step, starts, hours)
    regressions.sort(key=lambda r: (r.starts_at, r.metric, r.node_id or ""))
    return Trends(
        window=window.public(), granularity=granularity, buckets=buckets, regressions=regressions
    )


def _bucket(start: int, f: Figures) -> TrendBucket:
    # model_construct: hundreds of buckets per response, built from values computed here.
    runs = count(f, "runs")
    p50, p95 = latency(f).quantiles((0.5, 0.95))
    return TrendBucket.model_construct(
        start=from_us(start),
        run_count=runs,
        latency_ms=TrendLatency.model_construct(p50=p50, p95=p95),
        error_rate=ratio(count(f, "failed"), count(f, "finished")),
        cost=amount(f.sums.get("cost", 0.0)),
        tokens=count(f, "total_tokens"),
        cache_hit_rate=ratio(count(f, "cache_hits"), count(f, "cache_lookups")),
    )


def _value(value: float | None) -> float:
    return math.nan if value is None else value


def _node_regressions(
    conn: Connection,
    workflow_pk: int,
    window: Window,
    filters: Filters,
    step: int,
    starts: Sequence[int],
    hours: Sequence[int] | None,
) -> list[Regression]:
    """Mean latency series of the nodes that hold runs back the most."""
    totals = read_node_sums(
        conn, workflow_pk, window.start_us, window.end_us, filters, bucket_us=0, columns=("cp_us",)
    )
    cp_us = {node_id: us for (_, node_id), (us,) in totals.items()}
    total = sum(cp_us.values())
    top = sorted(
        (n for n, us in cp_us.items() if total and us >= MIN_NODE_SHARE * total),
        key=lambda n: (-cp_us[n], n),
    )[:NODE_SERIES]
    by_bucket = read_node_sums(
        conn,
        workflow_pk,
        window.start_us,
        window.end_us,
        filters,
        bucket_us=step,
        columns=("lat_sum_ms", "lat_count"),
        node_ids=top,
    )
    found = []
    for node_id in top:
        series = []
        for start in starts:
            sum_ms, count_ms = by_bucket.get((start, node_id), (0.0, 0))
            series.append(_value(ratio(sum_ms, count_ms)))
        found += _regressions("node_latency_mean_ms", node_id, series, starts, hours)
    return found


def _regressions(
    metric: str,
    node_id: str | None,
    series: Sequence[float],
    starts: Sequence[int],
    hours: Sequence[int] | None,
) -> list[Regression]:
    return [
        Regression(
            metric=metric,
            node_id=node_id,
            starts_at=from_us(starts[index]),
            before=point.before,
            after=point.after,
            change_pct=point.change_pct,
            confidence=point.confidence,
        )
        for index, point in change_points(series, hours)
    ]
