"""Wire schemas of the analytics endpoints (the field names are the contract of issue 3)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class WindowPublic(BaseModel):
    start: datetime = Field(description="Inclusive, on a whole hour (UTC).")
    end: datetime = Field(description="Exclusive, on a whole hour (UTC).")


class LatencyPercentiles(BaseModel):
    """Milliseconds; percentiles are nearest-rank within 1% (logarithmic histogram buckets)."""

    mean: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None


class RunLatency(LatencyPercentiles):
    max: float | None


class Tokens(BaseModel):
    prompt: int
    completion: int
    total: int


class CostFigures(BaseModel):
    total: float
    currency: str
    per_run_mean: float | None
    unpriced_node_executions: int


class CacheFigures(BaseModel):
    lookups: int
    hits: int
    hit_rate: float | None


class PeriodFigures(BaseModel):
    run_count: int
    succeeded: int
    failed: int
    success_rate: float | None = Field(description="succeeded / finished runs.")
    latency_ms: RunLatency
    tokens: Tokens
    cost: CostFigures
    cache: CacheFigures
    throughput_per_hour: float


class Change(BaseModel):
    """Change against the previous period in percent (null when the previous value is 0 or
    unknown)."""

    latency_p95: float | None
    cost: float | None
    success_rate: float | None


class PreviousPeriod(PeriodFigures):
    window: WindowPublic
    change_pct: Change


class Summary(PeriodFigures):
    window: WindowPublic
    previous_period: PreviousPeriod


class NodePerformance(BaseModel):
    node_id: str
    node_type: str
    title: str | None
    executions: int
    failed: int = Field(description="Executions with status failed or exception.")
    error_rate: float | None
    latency_ms: LatencyPercentiles
    share_of_run_time: float | None = Field(
        description="The node's total time over the runs' total time (children of an "
        "iteration or loop also count in their container)."
    )
    critical_path_share: float | None = Field(
        description="The fraction of all critical-path time this node accounts for."
    )
    on_critical_path_rate: float | None = Field(
        description="The fraction of analysed runs in which it lies on the critical path."
    )
    tokens: Tokens
    cost: float
    cache_hit_rate: float | None
    retries: int


class NodeList(BaseModel):
    window: WindowPublic
    runs_analysed: int = Field(description="Finished runs with a critical path in the window.")
    data: list[NodePerformance]


class Bottleneck(BaseModel):
    rank: int
    node_id: str
    node_type: str
    title: str | None
    critical_path_ms_per_run: float = Field(
        description="The node's time on the critical path per analysed run: the ranking key."
    )
    critical_path_share: float
    on_critical_path_rate: float
    latency_ms_at_threshold: float | None = Field(
        description="The node's latency at `threshold_percentile`."
    )
    reason: str = Field(
        description="The main reason: 'dominates the critical path', 'retries', "
        "'tail latency', 'waits on a slow dependency', or 'on the critical path'."
    )
    reasons: list[str]
    estimated_saving_ms_per_run: float | None = Field(
        description="What one run typically saves if this node took half as long: the median "
        "over analysed runs of each run's saving, its critical path replayed with the node "
        "halved (never more than half the node's time on that run's path; zero for runs it "
        "would not shorten)."
    )
    mean_saving_ms_per_run: float | None = Field(
        description="The same savings as a mean over analysed runs."
    )
    median_run_drop_ms: float | None = Field(
        description="How much the median run time would drop with the node halved in every "
        "run: a difference of two medians, not a saving of any one run."
    )


class BottleneckList(BaseModel):
    window: WindowPublic
    threshold_percentile: float
    runs_analysed: int
    data: list[Bottleneck]


class TrendLatency(BaseModel):
    p50: float | None
    p95: float | None


class TrendBucket(BaseModel):
    start: datetime
    run_count: int
    latency_ms: TrendLatency
    error_rate: float | None
    cost: float
    tokens: int
    cache_hit_rate: float | None


class Regression(BaseModel):
    metric: str = Field(
        description="latency_p50_ms, latency_p95_ms, error_rate, cost_per_run, tokens_per_run, "
        "or node_latency_mean_ms (with node_id)."
    )
    node_id: str | None = None
    starts_at: datetime
    before: float
    after: float
    change_pct: float
    confidence: float


class Trends(BaseModel):
    window: WindowPublic
    granularity: str
    buckets: list[TrendBucket]
    regressions: list[Regression]


class WorkflowOverview(BaseModel):
    workflow_id: str
    versions: list[str]
    last_run_at: datetime | None
    run_count: int
    success_rate: float | None
    latency_ms: TrendLatency
    cost: float
    currency: str
    cache_hit_rate: float | None


class WorkflowOverviewList(BaseModel):
    app_id: str
    window: WindowPublic
    data: list[WorkflowOverview]


class PathChild(BaseModel):
    id: str
    node_id: str
    node_type: str
    status: str
    parent_id: str | None = Field(None, description="The container it ran inside.")
    start_offset_ms: float
    duration_ms: float | None
    on_critical_path: bool = Field(
        False, description="The run waited on it: it held its container up, which held the run."
    )
    slack_ms: float | None = Field(
        None,
        description="How much longer it could have taken without delaying the run (finished "
        "executions only).",
    )


class PathStep(BaseModel):
    id: str
    node_id: str
    node_type: str
    title: str | None
    status: str
    start_offset_ms: float = Field(description="From the run's start.")
    duration_ms: float
    slack_ms: float = Field(
        description="How much longer it could have taken without delaying the run."
    )
    on_critical_path: bool
    children: list[PathChild] = Field(
        default_factory=list,
        description="Everything that ran inside this container (iteration and loop items, a "
        "chain's or agent's calls), depth first in start order.",
    )


class RunCriticalPath(BaseModel):
    run_id: str
    status: str
    duration_ms: float | None
    critical_path: list[str] = Field(description="Node execution ids, first to last.")
    critical_path_ms: float = Field(description="The summed durations of the path's nodes.")
    steps: list[PathStep] = Field(description="Every finished top-level node execution.")
