"""Wire schemas of workflow runs and their node executions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from flowscope.schemas.common import (
    Id,
    NonNegativeFloat,
    NonNegativeInt,
    ShortText,
    UtcDatetime,
)

RunStatus = Literal["running", "succeeded", "failed", "stopped", "partial-succeeded", "paused"]
NodeStatus = Literal["running", "succeeded", "failed", "exception", "stopped", "paused", "retry"]
CostSource = Literal["reported", "estimated", "unpriced", "none"]

_INPUT = ConfigDict(extra="ignore", allow_inf_nan=False, str_max_length=1_000_000)


class NodeExecutionCreate(BaseModel):
    """One execution of one node inside a run, as an engine reports it.

    `finished_at` must not be before `started_at`; that check runs at ingestion
    (flowscope.runs.rows), where the times are integers, and is reported like any other.
    """

    model_config = _INPUT

    id: Id = Field(description="Client-chosen id of this execution, unique within its run.")
    node_id: Id = Field(description="The node's id in the workflow graph.")
    node_type: ShortText = Field(
        min_length=1, description="Free string; Dify's names are the reference (llm, code, ...)."
    )
    title: str | None = Field(None, max_length=1000)
    index: NonNegativeInt | None = Field(None, description="Execution order within the run.")
    predecessor_node_id: Id | None = None
    status: NodeStatus
    started_at: UtcDatetime
    finished_at: UtcDatetime | None = None
    elapsed_ms: NonNegativeFloat | None = Field(
        None, description="Reported duration; derived from the timestamps when left out."
    )
    error: str | None = Field(None, max_length=100_000)
    model_provider: ShortText | None = None
    model_name: ShortText | None = None
    prompt_tokens: NonNegativeInt | None = None
    completion_tokens: NonNegativeInt | None = None
    total_tokens: NonNegativeInt | None = None
    cost: NonNegativeFloat | None = Field(
        None, description="Reported cost; estimated from the price table when left out."
    )
    currency: str = Field("USD", min_length=3, max_length=3)
    cache_hit: bool = False
    input_hash: ShortText | None = None
    retry_count: NonNegativeInt = 0
    iteration_id: Id | None = None
    iteration_index: NonNegativeInt | None = None
    loop_id: Id | None = None
    loop_index: NonNegativeInt | None = None
    parent_id: Id | None = Field(None, description="The container's node execution id.")


class RunCreate(BaseModel):
    """One workflow run with the node executions known so far."""

    model_config = _INPUT

    id: Id = Field(description="Client-chosen run id; re-sending it updates the run.")
    app_id: Id
    workflow_id: Id
    workflow_version: ShortText | None = None
    status: RunStatus
    started_at: UtcDatetime
    finished_at: UtcDatetime | None = None
    elapsed_ms: NonNegativeFloat | None = Field(
        None, description="Reported duration; derived from the timestamps when left out."
    )
    error: str | None = Field(None, max_length=100_000)
    triggered_from: ShortText | None = None
    inputs_hash: ShortText | None = None
    total_tokens: NonNegativeInt | None = Field(
        None, description="Run total when the engine knows it; else summed from the nodes."
    )
    node_executions: list[NodeExecutionCreate] = Field(default_factory=list)


class RunBatchCreate(BaseModel):
    """The body of POST /api/v1/runs."""

    model_config = _INPUT

    runs: list[RunCreate] = Field(min_length=1)


class IngestResult(BaseModel):
    accepted_runs: int
    accepted_node_executions: int


class NodeExecutionPublic(BaseModel):
    id: str
    node_id: str
    node_type: str
    title: str | None
    index: int | None
    predecessor_node_id: str | None
    status: NodeStatus
    started_at: datetime
    finished_at: datetime | None
    elapsed_ms: float | None
    error: str | None
    model_provider: str | None
    model_name: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cost: float | None
    currency: str
    cost_source: CostSource
    cache_hit: bool
    input_hash: str | None
    retry_count: int
    iteration_id: str | None
    iteration_index: int | None
    loop_id: str | None
    loop_index: int | None
    parent_id: str | None


class RunSummaryPublic(BaseModel):
    """A run's own figures, without its node executions (list endpoints)."""

    id: str
    app_id: str
    workflow_id: str
    workflow_version: str | None
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    elapsed_ms: float | None
    error: str | None
    triggered_from: str | None
    inputs_hash: str | None
    total_tokens: int | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None
    currency: str
    node_count: int
    cache_hits: int
    unpriced_node_executions: int


class RunPublic(RunSummaryPublic):
    node_executions: list[NodeExecutionPublic]
