"""The row layout of runs and node executions as ingestion writes them and the rollups read
them (column order), and the statuses that are not finished yet: below both `runs` and
`rollups`, so neither imports the other."""

from __future__ import annotations

# A report never moves a run or node backwards: once finished (rank 1) it stays finished.
UNFINISHED = frozenset({"running", "paused"})


def status_rank(status: str) -> int:
    return 0 if status in UNFINISHED else 1


def on_the_path(status: str, finished_at: object) -> bool:
    """Whether a node execution takes part in its run's critical path: it finished (one
    rule for the rollups and for a run's path read from its rows)."""
    return finished_at is not None and status not in UNFINISHED


RUN_COLUMNS = (
    "run_id",
    "tenant_id",
    "workflow_pk",
    "workflow_version",
    "status",
    "status_rank",
    "started_at_us",
    "finished_at_us",
    "elapsed_ms",
    "error",
    "triggered_from",
    "inputs_hash",
    "reported_total_tokens",
    "node_count",
    "cache_hits",
    "unpriced_node_executions",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "currency",
    "created_at_us",
    "updated_at_us",
)


NODE_COLUMNS = (
    "run_pk",
    "id",
    "node_id",
    "node_type",
    "status",
    "started_at_us",
    "finished_at_us",
    "elapsed_ms",
    "model_provider",
    "model_name",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "currency",
    "cost_source",
    "cache_hit",
    "input_hash",
    "retry_count",
    "parent_id",
    "details",
)
