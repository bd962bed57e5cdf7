"""Wire schemas of the advisor: workflow graphs and recommendations."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flowscope.limits import MAX_WINDOW_DAYS
from flowscope.schemas.performance import WindowPublic

Category = Literal[
    "performance", "cost", "reliability", "scalability", "best_practices", "parallelization"
]
Severity = Literal["critical", "high", "medium", "low"]
Status = Literal["active", "dismissed", "resolved"]


class GraphNodePublic(BaseModel):
    id: str
    type: str
    title: str | None
    parent_id: str | None = Field(None, description="The iteration or loop it runs inside.")
    reads: list[str] = Field(
        description="Nodes whose outputs this node reads (value selectors and templates)."
    )


class GraphEdgePublic(BaseModel):
    source: str
    target: str
    source_handle: str | None = None


class GraphPublic(BaseModel):
    app_id: str
    workflow_id: str
    workflow_version: str | None = Field(description="null: the graph of every version.")
    format: Literal["dify-dsl", "json"]
    dsl_version: str | None
    node_count: int
    edge_count: int
    nodes: list[GraphNodePublic]
    edges: list[GraphEdgePublic]
    independent_edges: list[GraphEdgePublic] = Field(
        description="Drawn edges between top-level nodes where the target does not need the "
        "source (no data read, no branch decision): candidates for parallel runs."
    )
    updated_at: datetime


class RecommendationEvidence(BaseModel):
    figures: dict[str, Any] = Field(description="The numbers the rule looked at (see the rule).")
    window: WindowPublic
    sample_size: int = Field(description="Executions, runs or hours the figures rest on.")


class EstimatedImpact(BaseModel):
    latency_ms_per_run: float | None = Field(
        None, description="Run time saved per run, in ms (median unless the rule says mean)."
    )
    cost_per_1k_runs: float | None = Field(None, description="Money saved per 1,000 runs.")
    error_rate: float | None = Field(None, description="Share of runs kept from failing.")


class RecommendationPublic(BaseModel):
    id: int
    category: Category
    severity: Severity
    rule_id: str
    title: str
    description: str
    node_ids: list[str]
    evidence: RecommendationEvidence
    estimated_impact: EstimatedImpact
    impact_score: float = Field(
        description="The share of a median run's time or cost it saves, or 4x the share of "
        "runs kept from failing, whichever is largest: the list's order."
    )
    confidence: float = Field(description="How sure the rule is, from 0 to 1.")
    action_steps: list[str]
    status: Status
    fingerprint: str
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    dismissed_at: datetime | None = None
    dismissed_by: str | None = None
    dismiss_reason: str | None = None


class RecommendationEventPublic(BaseModel):
    at: datetime
    event: Literal["created", "updated", "resolved", "reopened", "dismissed"]
    actor: str | None
    detail: str | None


class RecommendationDetail(RecommendationPublic):
    history: list[RecommendationEventPublic]


class RecommendationList(BaseModel):
    count: int
    data: list[RecommendationPublic]


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(
        7, ge=1, le=MAX_WINDOW_DAYS, description="Analyse this many days back from `end`."
    )
    end: datetime | None = Field(
        None, description="End of the analysed window (default now; rounded up to the hour)."
    )


class GenerateResult(BaseModel):
    window: WindowPublic
    runs_in_window: int
    runs_sampled: int
    graph: bool = Field(description="Whether a registered graph was used.")
    rules_run: int
    failed_rules: list[str]
    created: int
    updated: int
    reopened: int
    resolved: int
    data: list[RecommendationPublic] = Field(description="The active recommendations.")


class DismissRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=2000)
