"""What one run adds to the rollups, and the per-batch sum of such additions (pure).

A run's contribution is a function of its stored row and node rows alone, so re-ingesting a
run subtracts the contribution of what was stored before and adds that of what is stored
after: rollups stay exact however often, and in whatever order, a run is re-sent.

Everything is keyed by the hour (and the day) the run started in, so the run figures and the
node figures of one window always describe the same set of runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from flowscope.analytics.run_schedule import Execution, RunSchedule
from flowscope.analytics.sketch import ZERO_KEY, bucket_key
from flowscope.store.rows import UNFINISHED, NodeRow, RunRow, elapsed_ms, on_the_path
from flowscope.timeutil import DAY_US, HOUR_US

# Additive columns, then the ones merged by min/max, the histograms and the labels (last
# positive contribution wins). The tables in store/tables.py have these columns.
RUN_SUMS = (
    "runs",
    "finished",
    "succeeded",
    "failed",
    "lat_count",
    "lat_sum_ms",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "unpriced",
    "node_executions",
    "cache_lookups",
    "cache_hits",
    "analysed_runs",
)
NODE_SUMS = (
    "executions",
    "failed",
    "retries",
    "lat_count",
    "lat_sum_ms",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "unpriced",
    "cache_lookups",
    "cache_hits",
    "cp_runs",
    "cp_us",
    "wait_us",
    "saving_runs",
    "saving_ms_sum",
)
RUN_HISTS = ("lat_hist",)
NODE_HISTS = ("lat_hist", "saving_hist", "run_saving_hist")
RUN_LABELS = ("currency",)
NODE_LABELS = ("node_type", "title")

_NO_DETAILS: dict[str, Any] = {}
_FAILED_NODE = frozenset({"failed", "exception"})


def hist_key(value_ms: float) -> str:
    """The histogram key of a duration: its logarithmic bucket (sketch.py), or ZERO_KEY."""
    key = bucket_key(value_ms)
    return ZERO_KEY if key is None else str(key)


@dataclass(slots=True)
class Figures:
    """Additive figures for one rollup key; `add` with sign -1 takes a contribution back."""

    sums: dict[str, float] = field(default_factory=dict)
    hists: dict[str, dict[str, int]] = field(default_factory=dict)
    min_ms: float | None = None
    max_ms: float | None = None
    labels: dict[str, Any] = field(default_factory=dict)

    def add(self, other: Figures, sign: int) -> None:
        for name, value in other.sums.items():
            self.sums[name] = self.sums.get(name, 0) + sign * value
        for name, counts in other.hists.items():
            mine = self.hists.setdefault(name, {})
            for key, n in counts.items():
                total = mine.get(key, 0) + sign * n
                if total:
                    mine[key] = total
                else:
                    mine.pop(key, None)
        if sign > 0:  # a minimum or maximum cannot be taken back; readers check them
            if other.min_ms is not None:
                self.min_ms = (
                    other.min_ms if self.min_ms is None else min(self.min_ms, other.min_ms)
                )
            if other.max_ms is not None:
                self.max_ms = (
                    other.max_ms if self.max_ms is None else max(self.max_ms, other.max_ms)
                )
            self.labels.update(other.labels)

    def count(self, name: str, n: float = 1) -> None:
        self.sums[name] = self.sums.get(name, 0) + n

    def latency(self, ms: float) -> None:
        self.count("lat_count")
        self.count("lat_sum_ms", ms)
        self.bump("lat_hist", ms)
        self.min_ms = ms if self.min_ms is None else min(self.min_ms, ms)
        self.max_ms = ms if self.max_ms is None else max(self.max_ms, ms)

    def bump(self, hist: str, ms: float, n: int = 1) -> None:
        counts = self.hists.setdefault(hist, {})
        key = hist_key(ms)
        total = counts.get(key, 0) + n
        if total:
            counts[key] = total
        else:
            counts.pop(key, None)


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one run adds: its dimensions, run figures, and figures by node id."""

    version: str
    triggered_from: str
    started_at_us: int
    run: Figures
    nodes: dict[str, Figures]


def contribution(run: RunRow, nodes: Sequence[NodeRow]) -> Contribution:
    """A run's contribution from its row and its node rows."""
    figures = Figures()
    figures.count("runs")
    finished = run.status not in UNFINISHED
    if finished:
        figures.count("finished")
        figures.count("succeeded", run.status == "succeeded")
        figures.count("failed", run.status == "failed")
        run_ms = elapsed_ms(run.elapsed_ms, run.started_at_us, run.finished_at_us)
        if run_ms is not None:
            figures.latency(run_ms)
    else:
        run_ms = None
    for name in ("prompt_tokens", "completion_tokens", "total_tokens", "cost"):
        value = getattr(run, name)
        if value:
            figures.count(name, value)
    figures.labels["currency"] = run.currency

    by_node: dict[str, Figures] = {}
    details = [orjson.loads(row.details) if row.details else _NO_DETAILS for row in nodes]
    for row, described in zip(nodes, details, strict=True):
        node = by_node.get(row.node_id)
        if node is None:
            node = by_node[row.node_id] = Figures()
        _add_node(node, row, described, figures)
    figures.count("node_executions", len(nodes))

    if run_ms is not None and _add_critical_path(run, run_ms, nodes, details, by_node):
        figures.count("analysed_runs")
    return Contribution(
        run.workflow_version or "", run.triggered_from or "", run.started_at_us, figures, by_node
    )


def _add_node(node: Figures, row: NodeRow, details: dict[str, Any], run: Figures) -> None:
    node.count("executions")
    status = row.status
    if status in _FAILED_NODE:
        node.count("failed")
    if row.retry_count:
        node.count("retries", row.retry_count)
    elapsed = row.elapsed_ms
    if elapsed is not None and status not in UNFINISHED:
        node.latency(elapsed)
    for name, value in (
        ("prompt_tokens", row.prompt_tokens),
        ("completion_tokens", row.completion_tokens),
        ("total_tokens", row.total_tokens),
        ("cost", row.cost),
    ):
        if value:
            node.count(name, value)
    if row.cost_source == "unpriced":
        node.count("unpriced")
        run.count("unpriced")
    hit = bool(row.cache_hit)
    if hit or details.get("cache_lookup"):
        node.count("cache_lookups")
        run.count("cache_lookups")
    if hit:
        node.count("cache_hits")
        run.count("cache_hits")
    node.labels["node_type"] = row.node_type
    if details.get("title") is not None:
        node.labels["title"] = details["title"]


def _add_critical_path(
    run: RunRow,
    run_ms: float,
    nodes: Sequence[NodeRow],
    details: Sequence[dict[str, Any]],
    by_node: dict[str, Figures],
) -> bool:
    """Critical-path figures of a finished run, through its containers; False when it has
    no finished node execution."""
    executions = [
        Execution(
            row.id,
            row.node_id,
            row.started_at_us,
            end,
            described.get("predecessor_node_id"),
            row.parent_id,
        )
        for row, described in zip(nodes, details, strict=True)
        if on_the_path(row.status, end := row.finished_at_us) and end is not None
    ]
    if not executions:
        return False
    schedule = RunSchedule(
        executions, run_start_us=run.started_at_us, run_end_us=run.finished_at_us
    )
    path = schedule.critical_path()
    waits = schedule.gaps_on_path_us()
    for node_id, us in path.time_on_path_us().items():
        node = by_node[node_id]
        node.count("cp_runs")
        node.count("cp_us", us)
        node.count("wait_us", waits.get(node_id, 0))
        # A run saves at most half the node's own time on its path (replays through other
        # branches can only take from that).
        saving_us = min(schedule.saving_us(node_id, 0.5), us // 2) if us > 0 else 0
        if saving_us > 0:
            node.bump("run_saving_hist", saving_us / 1000.0)
            # The run as it would have been: its duration moves from one bucket to another.
            node.count("saving_runs")
            node.count("saving_ms_sum", saving_us / 1000.0)
            node.bump("saving_hist", max(0.0, run_ms - saving_us / 1000.0))
            node.bump("saving_hist", run_ms, -1)
    return True


# (workflow, span, scope, bucket start, version, trigger) and (..., node id). The workflow is
# its pk, or, before the batch's workflows are known, its (app_id, workflow_id): see
# `with_workflows`. Scope 0: one version and trigger; scope 1: all runs (version, trigger '').
RunKey = tuple[Any, int, int, int, str, str]
NodeKey = tuple[Any, int, int, int, str, str, str]


@dataclass(slots=True)
class Deltas:
    """The sum of contributions added and taken back by one batch, by rollup key.

    `add` sums contributions by hour, version and trigger only (scope 0); `complete` then
    derives the daily rows and the all-runs rows (scope 1) from those sums, so each
    contribution is merged once, not once per span and scope.
    """

    runs: dict[RunKey, Figures] = field(default_factory=dict)
    nodes: dict[NodeKey, Figures] = field(default_factory=dict)

    def add(self, workflow: Any, item: Contribution, sign: int) -> None:
        bucket = item.started_at_us - item.started_at_us % HOUR_US
        key = (workflow, HOUR_US, 0, bucket, item.version, item.triggered_from)
        self.runs.setdefault(key, Figures()).add(item.run, sign)
        for node_id, figures in item.nodes.items():
            self.nodes.setdefault((*key, node_id), Figures()).add(figures, sign)

    def complete(self) -> Deltas:
        """These hourly scope-0 deltas plus the daily and all-runs deltas they add up to."""
        done = Deltas(dict(self.runs), dict(self.nodes))  # type: ignore[arg-type]
        for source, target in ((self.runs, done.runs), (self.nodes, done.nodes)):
            for (workflow, _, _, bucket, version, trigger, *node), figures in source.items():
                day = bucket - bucket % DAY_US
                for key in (
                    (workflow, DAY_US, 0, day, version, trigger, *node),
                    (workflow, HOUR_US, 1, bucket, "", "", *node),
                    (workflow, DAY_US, 1, day, "", "", *node),
                ):
                    target.setdefault(key, Figures()).add(figures, +1)  # type: ignore[arg-type]
        return done

    def merged(self, other: Deltas) -> Deltas:
        """A new Deltas holding both (neither is changed)."""
        total = Deltas()
        for part in (self, other):
            for key, figures in part.runs.items():
                total.runs.setdefault(key, Figures()).add(figures, +1)
            for node_key, figures in part.nodes.items():
                total.nodes.setdefault(node_key, Figures()).add(figures, +1)
        return total

    def with_workflows(self, pks: Mapping[Any, int]) -> Deltas:
        """The same deltas with each workflow key replaced by its pk from `pks`."""
        return Deltas(
            {(pks[k[0]], *k[1:]): f for k, f in self.runs.items()},  # type: ignore[misc]
            {(pks[k[0]], *k[1:]): f for k, f in self.nodes.items()},  # type: ignore[misc]
        )
