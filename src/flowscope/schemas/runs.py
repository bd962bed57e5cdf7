"""Wire schemas of workflow runs and their node executions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, with_config
from typing_extensions import TypedDict

from flowscope.limits import MAX_ERROR, MAX_RETRIES, MAX_TITLE
from flowscope.schemas.common import (
    Count,
    Id,
    Milliseconds,
    Money,
    ShortText,
    UtcDatetime,
)

RunStatus = Literal["running", "succeeded", "failed", "stopped", "partial-succeeded", "paused"]
NodeStatus = Literal["running", "succeeded", "failed", "exception", "stopped", "paused", "retry"]
CostSource = Literal["reported", "estimated", "unpriced", "none"]

_INPUT = ConfigDict(extra="ignore", allow_inf_nan=False, str_max_length=1_000_000)

ReportedElapsedMs = Annotated[
    Milliseconds | None,
    Field(description="Reported duration; derived from the timestamps when left out."),
]

# The ingestion schemas are TypedDicts validated by pydantic: the same constraints, error
# locations and JSON schema as models, but validation into plain dicts costs half as much
# (no model instance per node execution), the largest saving on the ingestion hot path.
# Optional fields may be absent: read them with .get(); defaults are stated per field.


@with_config(_INPUT)
class NodeExecutionCreate(TypedDict):
    """One execution of one node inside a run, as an engine reports it.

    `finished_at` must not be before `started_at`; that check runs at ingestion
    (flowscope.runs.rows), where the times are integers, and is reported like any other.
    """

    id: Annotated[
        Id, Field(description="Client-chosen id of this execution, unique within its run.")
    ]
    node_id: Annotated[Id, Field(description="The node's id in the workflow graph.")]
    node_type: Annotated[
        ShortText,
        Field(min_length=1, description="Free string; Dify's names are the reference (llm, ...)."),
    ]
    title: NotRequired[Annotated[str | None, Field(max_length=MAX_TITLE)]]
    index: NotRequired[
        Annotated[Count | None, Field(description="Execution order within the run.")]
    ]
    predecessor_node_id: NotRequired[Id | None]
    status: NodeStatus
    started_at: UtcDatetime
    finished_at: NotRequired[UtcDatetime | None]
    elapsed_ms: NotRequired[ReportedElapsedMs]
    error: NotRequired[Annotated[str | None, Field(max_length=MAX_ERROR)]]
    model_provider: NotRequired[ShortText | None]
    model_name: NotRequired[ShortText | None]
    prompt_tokens: NotRequired[Count | None]
    completion_tokens: NotRequired[Count | None]
    total_tokens: NotRequired[Count | None]
    cost: NotRequired[
        Annotated[
            Money | None,
            Field(description="Reported cost; estimated from the price table when left out."),
        ]
    ]
    currency: NotRequired[
        Annotated[str, Field(min_length=3, max_length=3, description="Default USD.")]
    ]
    cache_hit: NotRequired[Annotated[bool, Field(description="Default false.")]]
    cache_lookup: NotRequired[
        Annotated[
            bool | None,
            Field(
                description="Whether the node consulted a result cache (hit or miss); a hit "
                "implies it. Cache hit rates are hits over lookups."
            ),
        ]
    ]
    input_hash: NotRequired[ShortText | None]
    retry_count: NotRequired[Annotated[int, Field(ge=0, le=MAX_RETRIES, description="Default 0.")]]
    iteration_id: NotRequired[Id | None]
    iteration_index: NotRequired[Count | None]
    loop_id: NotRequired[Id | None]
    loop_index: NotRequired[Count | None]
    parent_id: NotRequired[
        Annotated[Id | None, Field(description="The container's node execution id.")]
    ]
    truncated: NotRequired[
        Annotated[
            bool | None,
            Field(
                description="The engine kept only a cut copy of this execution's inputs, "
                "outputs or process data (Dify's offloaded rows): the figures those would "
                "have given (model, prompt/completion split, input hash) may be missing."
            ),
        ]
    ]


@with_config(_INPUT)
class RunCreate(TypedDict):
    """One workflow run with the node executions known so far."""

    id: Annotated[Id, Field(description="Client-chosen run id; re-sending it updates the run.")]
    app_id: Id
    workflow_id: Id
    workflow_version: NotRequired[ShortText | None]
    status: RunStatus
    started_at: UtcDatetime
    finished_at: NotRequired[UtcDatetime | None]
    elapsed_ms: NotRequired[ReportedElapsedMs]
    error: NotRequired[Annotated[str | None, Field(max_length=MAX_ERROR)]]
    triggered_from: NotRequired[ShortText | None]
    inputs_hash: NotRequired[ShortText | None]
    total_tokens: NotRequired[
        Annotated[
            Count | None,
            Field(description="Run total when the engine knows it; else summed from the nodes."),
        ]
    ]
    node_executions: NotRequired[list[NodeExecutionCreate]]


@with_config(_INPUT)
class RunBatchCreate(TypedDict):
    """The body of POST /api/v1/runs."""

    runs: Annotated[list[RunCreate], Field(min_length=1)]


RUN_CREATE: TypeAdapter[RunCreate] = TypeAdapter(RunCreate)
RUN_BATCH_CREATE: TypeAdapter[RunBatchCreate] = TypeAdapter(RunBatchCreate)


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
    cache_lookup: bool | None = None
    input_hash: str | None
    retry_count: int
    iteration_id: str | None
    iteration_index: int | None
    loop_id: str | None
    loop_index: int | None
    parent_id: str | None
    truncated: bool = Field(
        default=False,
        description="The engine kept only a cut copy of this execution's inputs, outputs or "
        "process data (Dify's offloaded rows): figures read from them may be missing.",
    )


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
