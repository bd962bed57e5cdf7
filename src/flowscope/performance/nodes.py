"""Node breakdown and critical-path bottlenecks of a workflow over a window."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from flowscope.analytics.sketch import ZERO_KEY, LatencyHistogram
from flowscope.performance.figures import amount, count, percentiles, ratio, tokens
from flowscope.performance.window import Window
from flowscope.rollups.figures import Figures
from flowscope.rollups.read import Filters, latency, read_node_figures, read_run_figures
from flowscope.schemas.performance import (
    Bottleneck,
    BottleneckList,
    NodeList,
    NodePerformance,
)

MIN_BOTTLENECK_SHARE = 0.05
"""Nodes with less of the critical-path time than this are not reported as bottlenecks."""
DOMINATES_SHARE = 0.5
RETRIES_PER_EXECUTION = 0.1
TAIL_RATIO = 3.0
WAIT_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """The merged rollups of a window: run figures and figures by node id."""

    run: Figures
    nodes: dict[str, Figures]

    @property
    def analysed(self) -> int:
        return count(self.run, "analysed_runs")

    @property
    def critical_path_us(self) -> int:
        return sum(count(n, "cp_us") for n in self.nodes.values())


def read_window_figures(
    conn: Connection, workflow_pk: int, window: Window, filters: Filters
) -> WindowFigures:
    runs = read_run_figures(conn, workflow_pk, window.start_us, window.end_us, filters)
    nodes = read_node_figures(conn, workflow_pk, window.start_us, window.end_us, filters)
    return WindowFigures(runs.get(0, Figures()), nodes)


def read_nodes(conn: Connection, workflow_pk: int, window: Window, filters: Filters) -> NodeList:
    """One entry per node id, the most time-consuming first."""
    return node_list(read_window_figures(conn, workflow_pk, window, filters), window)


def node_list(merged: WindowFigures, window: Window) -> NodeList:
    """The node breakdown of a window's merged rollups."""
    run_time = merged.run.sums.get("lat_sum_ms", 0.0)
    total_cp = merged.critical_path_us
    data = []
    for node_id, f in merged.nodes.items():
        executions, lookups = count(f, "executions"), count(f, "cache_lookups")
        data.append(
            NodePerformance(
                node_id=node_id,
                node_type=f.labels.get("node_type", ""),
                title=f.labels.get("title"),
                executions=executions,
                failed=count(f, "failed"),
                error_rate=ratio(count(f, "failed"), executions),
                latency_ms=percentiles(latency(f)),
                share_of_run_time=ratio(f.sums.get("lat_sum_ms", 0.0), run_time),
                critical_path_share=ratio(count(f, "cp_us"), total_cp),
                on_critical_path_rate=ratio(count(f, "cp_runs"), merged.analysed),
                tokens=tokens(f),
                cost=amount(f.sums.get("cost", 0.0)),
                cache_hit_rate=ratio(count(f, "cache_hits"), lookups),
                retries=count(f, "retries"),
            )
        )
    data.sort(key=lambda n: (-(n.share_of_run_time or 0.0), n.node_id))
    return NodeList(window=window.public(), runs_analysed=merged.analysed, data=data)


def read_bottlenecks(
    conn: Connection,
    workflow_pk: int,
    window: Window,
    filters: Filters,
    *,
    threshold_percentile: float = 90.0,
) -> BottleneckList:
    """Nodes ranked by the time they add to runs on the critical path (not raw duration)."""
    merged = read_window_figures(conn, workflow_pk, window, filters)
    return bottleneck_list(merged, window, threshold_percentile=threshold_percentile)


def bottleneck_list(
    merged: WindowFigures, window: Window, *, threshold_percentile: float = 90.0
) -> BottleneckList:
    """The bottlenecks of a window's merged rollups."""
    analysed, total_cp = merged.analysed, merged.critical_path_us
    run_histogram = latency(merged.run)
    median = run_histogram.quantile(0.5)
    ranked = []
    for node_id, f in merged.nodes.items():
        share = ratio(count(f, "cp_us"), total_cp) or 0.0
        if share < MIN_BOTTLENECK_SHARE:
            continue
        histogram = latency(f)
        reasons = _reasons(f, share, histogram)
        ranked.append(
            Bottleneck(
                rank=0,
                node_id=node_id,
                node_type=f.labels.get("node_type", ""),
                title=f.labels.get("title"),
                critical_path_ms_per_run=count(f, "cp_us") / 1000.0 / analysed,
                critical_path_share=share,
                on_critical_path_rate=count(f, "cp_runs") / analysed,
                latency_ms_at_threshold=histogram.quantile(threshold_percentile / 100.0),
                reason=reasons[0],
                reasons=reasons,
                estimated_saving_ms_per_run=_typical_saving(f, analysed),
                mean_saving_ms_per_run=f.sums.get("saving_ms_sum", 0.0) / analysed,
                median_run_drop_ms=_median_drop(merged.run, f, median),
            )
        )
    ranked.sort(key=lambda b: (-b.critical_path_ms_per_run, b.node_id))
    for rank, bottleneck in enumerate(ranked, start=1):
        bottleneck.rank = rank
    return BottleneckList(
        window=window.public(),
        threshold_percentile=threshold_percentile,
        runs_analysed=analysed,
        data=ranked,
    )


def _reasons(f: Figures, share: float, histogram: LatencyHistogram) -> list[str]:
    reasons = []
    if share >= DOMINATES_SHARE:
        reasons.append("dominates the critical path")
    if count(f, "retries") >= RETRIES_PER_EXECUTION * max(1, count(f, "executions")):
        reasons.append("retries")
    p50, p99 = histogram.quantile(0.5), histogram.quantile(0.99)
    if p50 and p99 and p99 >= TAIL_RATIO * p50:
        reasons.append("tail latency")
    if count(f, "wait_us") >= WAIT_SHARE * max(1, count(f, "cp_us")):
        reasons.append("waits on a slow dependency")
    return reasons or ["on the critical path"]


def _typical_saving(node: Figures, analysed: int) -> float | None:
    """The median, over the analysed runs, of what each run would save with the node halved:
    its replayed saving (at most half the node's time on its path), zero for runs it would
    not shorten."""
    if analysed <= 0:
        return None
    counts = dict(node.hists.get("run_saving_hist", {}))
    shortened = sum(n for n in counts.values() if n > 0)
    counts[ZERO_KEY] = counts.get(ZERO_KEY, 0) + max(0, analysed - shortened)
    sum_ms = float(node.sums.get("saving_ms_sum", 0.0))
    return LatencyHistogram.from_counts(counts, sum_ms=sum_ms).quantile(0.5)


def _median_drop(run: Figures, node: Figures, median: float | None) -> float | None:
    """The median run time minus the median with the node halved in every analysed run.

    The node's `saving_hist` moves each run it would speed up from its actual duration's
    bucket to its faster duration's: added to the runs' histogram, it is the histogram of the
    runs as they would have been.
    """
    if median is None:
        return None
    faster = Figures()
    faster.add(run, +1)
    faster.add(Figures(hists={"lat_hist": node.hists.get("saving_hist", {})}), +1)
    faster.sums["lat_sum_ms"] = run.sums.get("lat_sum_ms", 0.0) - node.sums.get(
        "saving_ms_sum", 0.0
    )
    faster_median = latency(faster).quantile(0.5)
    return None if faster_median is None else max(0.0, median - faster_median)
