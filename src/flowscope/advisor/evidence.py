"""What the rules look at: a workflow's figures over a window, a sample of its recent runs and
its graph, as plain data (gathered from the database by `advisor.gather`, built by hand in
tests)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from flowscope.advisor.thresholds import Thresholds
from flowscope.analytics.critical_path import Execution, Schedule
from flowscope.graphs.model import WorkflowGraph


@dataclass(frozen=True, slots=True)
class NodeStats:
    """A node's figures over the window (from the rollups)."""

    node_id: str
    node_type: str
    title: str | None = None
    executions: int = 0
    failed: int = 0  # failed or exception
    retries: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    critical_path_share: float = 0.0
    on_critical_path_rate: float = 0.0
    critical_path_ms_per_run: float = 0.0
    halving_saving_ms_per_run: float | None = None  # a typical run's, replayed (bottlenecks)
    halving_mean_saving_ms_per_run: float | None = None  # the mean over analysed runs
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cache_lookups: int = 0
    cache_hits: int = 0

    @property
    def error_rate(self) -> float:
        return self.failed / self.executions if self.executions else 0.0


@dataclass(frozen=True, slots=True)
class SampleExecution:
    """One node execution of a sampled run (raw row)."""

    id: str
    node_id: str
    node_type: str
    status: str
    start_us: int
    end_us: int | None
    elapsed_ms: float | None = None
    model_provider: str | None = None
    model_name: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    cache_hit: bool = False
    input_hash: str | None = None
    retry_count: int = 0
    parent_id: str | None = None
    predecessor_node_id: str | None = None
    index: int | None = None  # iteration or loop index of a child
    error: str | None = None


@dataclass
class SampleRun:
    """A recent finished run with all its node executions."""

    run_id: str
    status: str
    start_us: int
    end_us: int
    executions: list[SampleExecution]
    # The schedule built for one `needs` object (Evidence.needs() hands out the same one).
    _schedule: tuple[object, Schedule | None] | None = field(default=None, repr=False)

    @functools.cached_property
    def by_id(self) -> dict[str, SampleExecution]:
        """Executions by id (built once: every replay looks them up)."""
        return {e.id: e for e in self.executions}

    @property
    def duration_ms(self) -> float:
        return (self.end_us - self.start_us) / 1000.0

    def schedule(self, needs: Mapping[str, Any] | None) -> Schedule | None:
        """The run's critical-path schedule (top-level finished executions), built once per
        `needs`."""
        if self._schedule is None or self._schedule[0] is not needs:
            top = [
                Execution(e.id, e.node_id, e.start_us, e.end_us, e.predecessor_node_id)
                for e in self.executions
                if e.parent_id is None and e.end_us is not None and e.end_us >= e.start_us
            ]
            built = (
                Schedule(top, needs=needs, run_start_us=self.start_us, run_end_us=self.end_us)
                if top
                else None
            )
            self._schedule = (needs, built)
        return self._schedule[1]


@dataclass(frozen=True, slots=True)
class RegressionFact:
    """A change point the trends found (performance.regressions)."""

    metric: str
    node_id: str | None
    starts_at_us: int
    before: float
    after: float
    change_pct: float
    confidence: float


@dataclass(frozen=True, slots=True)
class CacheFact:
    """Whether the cache policy would cache a node, and for how long."""

    cacheable: bool
    ttl_seconds: int | None
    reason: str


@dataclass
class Evidence:
    """Everything one generation looks at."""

    window_start_us: int
    window_end_us: int
    thresholds: Thresholds
    runs: int = 0
    run_p50_ms: float | None = None
    cost_per_run: float | None = None
    nodes: dict[str, NodeStats] = field(default_factory=dict)
    # node id -> [(hour start, executions, failed)] for hours with executions
    hourly: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)
    # (day start, runs, total tokens, cost) for days with runs
    daily: list[tuple[int, int, float, float]] = field(default_factory=list)
    regressions: list[RegressionFact] = field(default_factory=list)
    sample: list[SampleRun] = field(default_factory=list)
    graph: WorkflowGraph | None = None
    cache: dict[str, CacheFact] = field(default_factory=dict)
    # (provider, model, prompt tokens, completion tokens) -> cost, or None if unpriced
    price: Callable[[str | None, str, int, int], float | None] | None = None
    # Derived once per graph and per sample (rules ask for them node after node).
    _memo: dict[str, tuple[object, Any]] = field(default_factory=dict, repr=False)

    def needs(self) -> dict[str, frozenset[str]] | None:
        """The graph's drawn dependencies (the same object on every call for one graph)."""
        if self.graph is None:
            return None
        memo = self._memo.get("needs")
        if memo is None or memo[0] is not self.graph:
            memo = self._memo["needs"] = (self.graph, self.graph.needs())
        needs: dict[str, frozenset[str]] = memo[1]
        return needs

    def node_executions(self, node_id: str) -> list[SampleExecution]:
        """The sampled executions of one node, in run order (do not change the list)."""
        memo = self._memo.get("by_node")
        if memo is None or memo[0] is not self.sample:
            by_node: dict[str, list[SampleExecution]] = {}
            for run in self.sample:
                for e in run.executions:
                    by_node.setdefault(e.node_id, []).append(e)
            memo = self._memo["by_node"] = (self.sample, by_node)
        found: list[SampleExecution] = memo[1].get(node_id, [])
        return found

    def sample_median_run_ms(self) -> float | None:
        if not self.sample:
            return self.run_p50_ms
        return median(run.duration_ms for run in self.sample)
