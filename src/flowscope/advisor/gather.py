"""Reading a workflow's Evidence from the database: the window's rollups (figures, hourly
failures, daily tokens, regressions), a sample of its most recent finished runs with all
their node executions, its graph and its cache policy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import Connection

from flowscope.advisor.evidence import (
    CacheFact,
    Evidence,
    NodeStats,
    RegressionFact,
    SampleExecution,
    SampleRun,
)
from flowscope.advisor.thresholds import Thresholds
from flowscope.cache.policy import decide
from flowscope.cache.service import effective_policy, read_policy
from flowscope.graphs.store import read_graph, read_latest_graph
from flowscope.performance.figures import count
from flowscope.performance.nodes import (
    WindowFigures,
    bottleneck_list,
    node_list,
    read_window_figures,
)
from flowscope.performance.summary import period_figures
from flowscope.performance.trends import read_trends
from flowscope.performance.window import Window
from flowscope.rollups.read import Filters, read_node_sums, read_run_figures
from flowscope.runs.pricing import PriceBook
from flowscope.store import dialect
from flowscope.store.rows import NODE_COLUMNS, NodeRow
from flowscope.timeutil import DAY_US, HOUR_US, to_us

TREND_MIN_DAYS = 28
TREND_MAX_DAYS = 90


def trend_window(window: Window) -> Window:
    """Where regressions are searched: four times the analysed window (at least 28 days, at
    most 90, never shorter than the window itself), ending where it ends."""
    days = min(max(4 * window.hours // 24, TREND_MIN_DAYS), TREND_MAX_DAYS)
    span = max(days * DAY_US, window.end_us - window.start_us)
    return Window(window.end_us - span, window.end_us)


_CHUNK = 500


def gather(
    conn: Connection,
    workflow_pk: int,
    window: Window,
    thresholds: Thresholds,
    *,
    prices: PriceBook,
    default_ttls: Mapping[str, int],
) -> Evidence:
    filters = Filters()
    # One read of the window's rollups serves the summary, the nodes and the bottlenecks.
    merged = read_window_figures(conn, workflow_pk, window, filters)
    period = period_figures(merged.run, window)
    evidence = Evidence(
        window_start_us=window.start_us,
        window_end_us=window.end_us,
        thresholds=thresholds,
        runs=period.run_count,
        run_p50_ms=period.latency_ms.p50,
        cost_per_run=period.cost.per_run_mean,
        price=prices.estimate,
    )
    evidence.nodes = _node_stats(merged, window)
    hourly = read_node_sums(
        conn, workflow_pk, window.start_us, window.end_us, filters,
        bucket_us=HOUR_US, columns=("executions", "failed"),
    )  # fmt: skip
    for (hour, node_id), (executions, failed) in sorted(hourly.items()):
        if executions:
            evidence.hourly.setdefault(node_id, []).append((hour, int(executions), int(failed)))
    days = read_run_figures(
        conn, workflow_pk, window.start_us, window.end_us, filters, bucket_us=DAY_US
    )
    evidence.daily = [
        (day, int(f.sums.get("runs", 0)), float(f.sums.get("total_tokens", 0)),
         float(f.sums.get("cost", 0.0)))
        for day, f in sorted(days.items())
    ]  # fmt: skip
    # A change needs a baseline before it: search a longer window ending at the same time,
    # and keep the changes that start inside the analysed one.
    trends = read_trends(conn, workflow_pk, trend_window(window), filters, granularity="hour")
    evidence.regressions = [
        RegressionFact(r.metric, r.node_id, to_us(r.starts_at), r.before, r.after,
                       r.change_pct, r.confidence)
        for r in trends.regressions
        if to_us(r.starts_at) >= window.start_us
    ]  # fmt: skip
    evidence.sample = read_sample(conn, workflow_pk, window, thresholds.sample_runs)
    found = read_graph(conn, workflow_pk) or read_latest_graph(conn, workflow_pk)
    if found is not None:
        evidence.graph = found[0]
        policy = effective_policy(read_policy(conn, workflow_pk), default_ttls)
        for node_id, node in evidence.graph.nodes.items():
            if node.config_known:
                decision = decide(policy, node_id, node.type, node.config)
                evidence.cache[node_id] = CacheFact(
                    decision.cacheable, decision.ttl_seconds, decision.reason
                )
    return evidence


def _node_stats(merged: WindowFigures, window: Window) -> dict[str, NodeStats]:
    bottlenecks = {b.node_id: b for b in bottleneck_list(merged, window).data}
    stats = {}
    for n in node_list(merged, window).data:
        figures = merged.nodes[n.node_id]
        bottleneck = bottlenecks.get(n.node_id)
        stats[n.node_id] = NodeStats(
            node_id=n.node_id,
            node_type=n.node_type,
            title=n.title,
            executions=n.executions,
            failed=n.failed,
            retries=n.retries,
            p50_ms=n.latency_ms.p50,
            p95_ms=n.latency_ms.p95,
            p99_ms=n.latency_ms.p99,
            mean_ms=n.latency_ms.mean,
            critical_path_share=n.critical_path_share or 0.0,
            on_critical_path_rate=n.on_critical_path_rate or 0.0,
            # Reported for bottlenecks (5% of the critical path or more), else too small to act on.
            critical_path_ms_per_run=bottleneck.critical_path_ms_per_run if bottleneck else 0.0,
            halving_saving_ms_per_run=bottleneck.estimated_saving_ms_per_run
            if bottleneck
            else None,
            halving_mean_saving_ms_per_run=(
                bottleneck.mean_saving_ms_per_run if bottleneck else None
            ),
            prompt_tokens=n.tokens.prompt,
            completion_tokens=n.tokens.completion,
            cost=n.cost,
            cache_lookups=count(figures, "cache_lookups"),
            cache_hits=count(figures, "cache_hits"),
        )
    return stats


def read_sample(conn: Connection, workflow_pk: int, window: Window, limit: int) -> list[SampleRun]:
    """The `limit` most recent finished runs that started in the window, oldest first."""
    if limit <= 0:
        return []
    mark = dialect.mark(conn)
    rows = conn.exec_driver_sql(
        "SELECT id, run_id, status, started_at_us, finished_at_us FROM workflow_runs "
        f"WHERE workflow_pk = {mark} AND started_at_us >= {mark} AND started_at_us < {mark} "
        f"AND status_rank = 1 AND finished_at_us IS NOT NULL "
        f"ORDER BY started_at_us DESC, id DESC LIMIT {mark}",
        (workflow_pk, window.start_us, window.end_us, limit),
    ).all()
    runs = {
        pk: SampleRun(run_id, status, start, end, []) for pk, run_id, status, start, end in rows
    }
    pks = list(runs)
    for at in range(0, len(pks), _CHUNK):
        where, params = dialect.any_of(conn, "run_pk", pks[at : at + _CHUNK])
        for row in conn.exec_driver_sql(
            f"SELECT {', '.join(NODE_COLUMNS)} FROM node_executions WHERE {where}", params
        ):
            runs[row[0]].executions.append(_execution(NodeRow(*row)))
    ordered = sorted(runs.values(), key=lambda r: (r.start_us, r.run_id))
    for run in ordered:
        run.executions.sort(key=lambda e: (e.start_us, e.id))
    return ordered


def _execution(row: NodeRow) -> SampleExecution:
    details: dict[str, Any] = orjson.loads(row.details) if row.details else {}
    index = details.get("iteration_index", details.get("loop_index", details.get("index")))
    return SampleExecution(
        id=row.id,
        node_id=row.node_id,
        node_type=row.node_type,
        status=row.status,
        start_us=row.started_at_us,
        end_us=row.finished_at_us,
        elapsed_ms=row.elapsed_ms,
        model_provider=row.model_provider,
        model_name=row.model_name,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cost=row.cost,
        cache_hit=bool(row.cache_hit),
        input_hash=row.input_hash,
        retry_count=row.retry_count or 0,
        parent_id=row.parent_id,
        predecessor_node_id=details.get("predecessor_node_id"),
        index=index if isinstance(index, int) else None,
        error=details.get("error"),
    )
