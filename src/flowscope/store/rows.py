"""The rows of runs and node executions as ingestion writes them and the rollups, the advisor
and deletion read them, as named tuples whose fields are the tables' columns in write order;
and the rules about a row's status that everyone shares. Below both `runs` and `rollups`, so
neither imports the other.

A NamedTuple costs what a tuple costs to store and to read by position (the database
drivers take it as it is), and a field is read by name: a new column is a new field here, a
column in store/tables.py and a migration, and tests/store/test_rows.py fails until the three
agree.
"""

from __future__ import annotations

from typing import NamedTuple

# A report never moves a run or node backwards: once finished (rank 1) it stays finished.
UNFINISHED = frozenset({"running", "paused"})


def status_rank(status: str) -> int:
    return 0 if status in UNFINISHED else 1


def rank_sql(table: str) -> str:
    """`status_rank` as SQL over `table.status` (node executions keep no rank column)."""
    unfinished = ", ".join(f"'{status}'" for status in sorted(UNFINISHED))
    return f"CASE WHEN {table}.status IN ({unfinished}) THEN 0 ELSE 1 END"


def on_the_path(status: str, finished_at: object) -> bool:
    """Whether a node execution takes part in its run's critical path: it finished (one
    rule for the rollups and for a run's path read from its rows)."""
    return finished_at is not None and status not in UNFINISHED


def elapsed_ms(reported: float | None, started_us: int, finished_us: int | None) -> float | None:
    """The elapsed time of a run or node execution: as reported, else from its start and end
    (unknown while it has no end)."""
    if reported is not None:
        return reported
    if finished_us is None:
        return None
    return (finished_us - started_us) / 1000.0


class RunRow(NamedTuple):
    """A `workflow_runs` row without its surrogate key `id`."""

    run_id: str
    tenant_id: int
    workflow_pk: int
    workflow_version: str | None
    status: str
    status_rank: int
    started_at_us: int
    finished_at_us: int | None
    elapsed_ms: float | None
    error: str | None
    triggered_from: str | None
    inputs_hash: str | None
    reported_total_tokens: int | None
    node_count: int
    cache_hits: int
    unpriced_node_executions: int
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cost: float | None
    currency: str
    created_at_us: int
    updated_at_us: int


class NodeRow(NamedTuple):
    """A `node_executions` row; `details` holds the descriptive fields as JSON text."""

    run_pk: int
    id: str
    node_id: str
    node_type: str
    status: str
    started_at_us: int
    finished_at_us: int | None
    elapsed_ms: float | None
    model_provider: str | None
    model_name: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cost: float | None
    currency: str
    cost_source: str
    cache_hit: bool
    input_hash: str | None
    retry_count: int
    parent_id: str | None
    details: str | None


RUN_COLUMNS: tuple[str, ...] = RunRow._fields
NODE_COLUMNS: tuple[str, ...] = NodeRow._fields
