"""flowscope's rollups as Prometheus metrics: per workflow and per node, counters since the
first run and latency histograms, so Grafana can chart them beside a team's own metrics.

Read at scrape time from the daily all-runs rollups (one row per workflow, node and day), so
a scrape costs the same whatever the raw volume. Counters are totals since the first run:
they only fall when a re-sent run changes its status or figures (Prometheus treats that as
a reset). Histogram buckets come from the rollups' logarithmic buckets, each counted at the
first bound not below its value (within 1%).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy import Connection

from flowscope.analytics.sketch import ZERO_KEY, bucket_value
from flowscope.store import dialect
from flowscope.timeutil import DAY_US

BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Upper bounds (seconds) of the exported histograms, +Inf added."""

_LABELS = ("tenant", "app_id", "workflow_id")


@dataclass
class _Totals:
    sums: dict[str, float] = field(default_factory=dict)
    hist: dict[str, int] = field(default_factory=dict)

    def add(self, sums: dict[str, float], hist: str | None) -> None:
        for name, value in sums.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value or 0)
        for key, count in (orjson.loads(hist) if hist else {}).items():
            self.hist[key] = self.hist.get(key, 0) + count


_RUN_SUMS = ("runs", "failed", "prompt_tokens", "completion_tokens", "cost", "lat_count",
             "lat_sum_ms")  # fmt: skip
_NODE_SUMS = ("executions", "failed", "retries", "prompt_tokens", "completion_tokens", "cost",
              "cache_hits", "lat_count", "lat_sum_ms")  # fmt: skip


def collect(conn: Connection, tenant_id: int | None) -> list[Metric]:
    """Every metric family of one tenant, or of every tenant (None)."""
    names = _workflow_names(conn, tenant_id)
    runs = _read(conn, "run_rollups", (), _RUN_SUMS, names)
    nodes = _read(conn, "node_rollups", ("node_id", "node_type"), _NODE_SUMS, names)
    return [*_run_metrics(runs), *_node_metrics(nodes)]


def _workflow_names(conn: Connection, tenant_id: int | None) -> dict[int, tuple[str, str, str]]:
    sql = (
        "SELECT w.id, t.name, a.app_id, w.workflow_id FROM workflows w "
        "JOIN apps a ON a.id = w.app_pk JOIN tenants t ON t.id = a.tenant_id"
    )
    params: tuple[int, ...] = ()
    if tenant_id is not None:
        sql += f" WHERE a.tenant_id = {dialect.mark(conn)}"
        params = (tenant_id,)
    return {pk: (tenant, app, workflow) for pk, tenant, app, workflow in
            conn.exec_driver_sql(sql, params)}  # fmt: skip


def _read(
    conn: Connection,
    table: str,
    key: tuple[str, ...],
    sums: tuple[str, ...],
    names: dict[int, tuple[str, str, str]],
) -> dict[tuple[str, ...], _Totals]:
    """Totals by (tenant, app, workflow, *key) over every daily all-runs row."""
    if not names:
        return {}
    of_workflows, params = dialect.any_of(conn, "workflow_pk", sorted(names))
    mark = dialect.mark(conn)
    columns = ", ".join(("workflow_pk", *key, *sums, "lat_hist"))
    totals: dict[tuple[str, ...], _Totals] = {}
    for row in conn.exec_driver_sql(
        f"SELECT {columns} FROM {table} WHERE span_us = {mark} AND scope = 1 AND {of_workflows}",
        (DAY_US, *params),
    ):
        labels = (*names[row[0]], *(str(v) for v in row[1 : 1 + len(key)]))
        values = dict(zip(sums, row[1 + len(key) : 1 + len(key) + len(sums)], strict=True))
        totals.setdefault(labels, _Totals()).add(values, row[-1])
    return totals


# (metric name, help, rollup sum); tokens and the duration histogram are added to each level.
_RUN_COUNTERS = (
    ("flowscope_workflow_runs", "Runs recorded, by workflow.", "runs"),
    ("flowscope_workflow_runs_failed", "Runs that ended failed.", "failed"),
    ("flowscope_workflow_cost_usd", "Estimated or reported cost of the runs, USD.", "cost"),
)
_NODE_COUNTERS = (
    ("flowscope_node_executions", "Node executions, by node.", "executions"),
    ("flowscope_node_failures", "Node executions that failed (or failed and were handled).",
     "failed"),
    ("flowscope_node_retries", "Retries.", "retries"),
    ("flowscope_node_cache_hits", "Executions served from a cache.", "cache_hits"),
    ("flowscope_node_cost_usd", "Estimated or reported cost of the node, USD.", "cost"),
)  # fmt: skip


def _run_metrics(runs: dict[tuple[str, ...], _Totals]) -> list[Metric]:
    return _families(runs, "flowscope_workflow", "runs", _LABELS, _RUN_COUNTERS,
                     "flowscope_workflow_run_duration_seconds")  # fmt: skip


def _node_metrics(nodes: dict[tuple[str, ...], _Totals]) -> list[Metric]:
    return _families(nodes, "flowscope_node", "node executions", (*_LABELS, "node_id", "node_type"),
                     _NODE_COUNTERS, "flowscope_node_duration_seconds")  # fmt: skip


def _families(
    totals: dict[tuple[str, ...], _Totals],
    prefix: str,
    what: str,
    labels: tuple[str, ...],
    counters: tuple[tuple[str, str, str], ...],
    duration_name: str,
) -> list[Metric]:
    """The counter families, tokens by kind and the duration histogram of one level."""
    families = [(CounterMetricFamily(name, text, labels=labels), total)
                for name, text, total in counters]  # fmt: skip
    tokens = CounterMetricFamily(
        f"{prefix}_tokens", f"LLM tokens of the {what}.", labels=(*labels, "kind")
    )
    duration = HistogramMetricFamily(duration_name, f"Duration of finished {what}.", labels=labels)
    for key, t in sorted(totals.items()):
        for family, total in families:
            family.add_metric(key, t.sums[total])
        tokens.add_metric((*key, "prompt"), t.sums["prompt_tokens"])
        tokens.add_metric((*key, "completion"), t.sums["completion_tokens"])
        duration.add_metric(key, _buckets(t.hist), sum_value=t.sums["lat_sum_ms"] / 1000)
    return [*(family for family, _ in families), tokens, duration]


def _buckets(hist: dict[str, int]) -> list[tuple[str, float]]:
    """Cumulative (le, count) pairs from counts by logarithmic bucket key."""
    counts = [0] * (len(BUCKETS_S) + 1)
    for key, count in hist.items():
        counts[_bound_of(key)] += count
    cumulative, total = [], 0
    for bound, count in zip((*map(str, BUCKETS_S), "+Inf"), counts, strict=True):
        total += count
        cumulative.append((bound, float(total)))
    return cumulative


@functools.cache
def _bound_of(key: str) -> int:
    """The index of the first bound not below a logarithmic bucket's value."""
    return _first_at_least(0.0 if key == ZERO_KEY else bucket_value(int(key)) / 1000)


def _first_at_least(seconds: float) -> int:
    for i, bound in enumerate(BUCKETS_S):
        if seconds <= bound:
            return i
    return len(BUCKETS_S)


def render(families: Iterable[Metric]) -> bytes:
    """The Prometheus text exposition of some metric families."""
    from prometheus_client import CollectorRegistry, generate_latest

    class _Once:
        def collect(self) -> Iterable[Metric]:
            return families

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Once())  # type: ignore[arg-type]
    return generate_latest(registry)
