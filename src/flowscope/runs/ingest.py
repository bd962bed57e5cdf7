"""Idempotent ingestion of workflow runs and their node executions.

Run ids and (run, node execution id) are keys: re-sending changes nothing, a later status or
more node executions update the run, and a report never moves a finished run back to running,
whatever the order of arrival. Run totals (tokens, cost, node count, cache hits) are recomputed
from the stored node executions, so they never double. The caller owns the transaction: on
`IngestRejected` it rolls back and nothing of the batch is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from flowscope import catalog
from flowscope.runs.pricing import PriceBook
from flowscope.runs.rows import (
    NODE_COLUMNS,
    RUN_COLUMNS,
    node_row,
    run_row,
    status_rank,
    time_order_errors,
)
from flowscope.schemas.runs import IngestResult, NodeExecutionCreate, RunCreate
from flowscope.store import dialect
from flowscope.timeutil import now_us as _now_us

_CHUNK = 500


def _set(columns: Sequence[str], table: str, keep: frozenset[str]) -> str:
    """`col = excluded.col` for each column; optional ones keep their old value when null."""
    parts = []
    for col in columns:
        if col in keep:
            parts.append(f"{col} = COALESCE(excluded.{col}, {table}.{col})")
        else:
            parts.append(f"{col} = excluded.{col}")
    return ", ".join(parts)


_RUN_UPDATE = (
    "DO UPDATE SET "
    + _set(
        (
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
            "updated_at_us",
        ),
        "workflow_runs",
        frozenset(
            {
                "workflow_version",
                "finished_at_us",
                "elapsed_ms",
                "error",
                "triggered_from",
                "inputs_hash",
                "reported_total_tokens",
            }
        ),
    )
    + " WHERE excluded.status_rank >= workflow_runs.status_rank"
)

_NODE_OPTIONAL = frozenset(
    {
        "finished_at_us",
        "elapsed_ms",
        "model_provider",
        "model_name",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "input_hash",
        "parent_id",
        "details",
    }
)
# Nodes keep no rank column (one column less to write per row): it is derived from the status.
_NODE_RANK = "CASE WHEN {t}.status IN ('running', 'paused') THEN 0 ELSE 1 END"
_NODE_UPDATE = (
    "DO UPDATE SET "
    + _set(NODE_COLUMNS[2:], "node_executions", _NODE_OPTIONAL)
    + f" WHERE {_NODE_RANK.format(t='excluded')} >= {_NODE_RANK.format(t='node_executions')}"
)

# A container (iteration, loop) may already include its children's tokens and cost, as
# Dify's do: a child counts towards the run only when its container reports none itself.
_RUN_TOTALS = """
UPDATE workflow_runs SET
    node_count = a.node_count,
    cache_hits = a.cache_hits,
    unpriced_node_executions = a.unpriced,
    prompt_tokens = a.prompt_tokens,
    completion_tokens = a.completion_tokens,
    total_tokens = COALESCE(workflow_runs.reported_total_tokens, a.total_tokens),
    cost = a.cost,
    currency = a.currency
FROM (
    SELECT r.id AS run_pk,
        COUNT(n.id) AS node_count,
        COALESCE(SUM(CASE WHEN n.cache_hit THEN 1 ELSE 0 END), 0) AS cache_hits,
        COALESCE(SUM(CASE WHEN n.cost_source = 'unpriced' THEN 1 ELSE 0 END), 0) AS unpriced,
        SUM(CASE WHEN p.total_tokens IS NULL THEN n.prompt_tokens END) AS prompt_tokens,
        SUM(CASE WHEN p.total_tokens IS NULL THEN n.completion_tokens END) AS completion_tokens,
        SUM(CASE WHEN p.total_tokens IS NULL THEN n.total_tokens END) AS total_tokens,
        SUM(CASE WHEN p.cost IS NULL THEN n.cost END) AS cost,
        COALESCE(MAX(CASE WHEN n.cost IS NOT NULL THEN n.currency END), 'USD') AS currency
    FROM workflow_runs r
    LEFT JOIN node_executions n ON n.run_pk = r.id
    LEFT JOIN node_executions p ON p.run_pk = n.run_pk AND p.id = n.parent_id
    WHERE r.id IN {ids}
    GROUP BY r.id
) AS a
WHERE workflow_runs.id = a.run_pk
"""


@dataclass
class IngestRejected(Exception):
    """The batch names something it may not touch; nothing of it may be kept."""

    errors: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in self.errors)


def _dedupe(runs: Sequence[RunCreate]) -> tuple[dict[str, int], dict[str, RunCreate]]:
    """The last report of each run id with the highest rank, and where it stood in the batch."""
    index: dict[str, int] = {}
    latest: dict[str, RunCreate] = {}
    for i, run in enumerate(runs):
        seen = latest.get(run.id)
        if seen is None or status_rank(run.status) >= status_rank(seen.status):
            latest[run.id] = run
        index.setdefault(run.id, i)
    return index, latest


def _nodes_by_run(runs: Sequence[RunCreate]) -> dict[str, dict[str, NodeExecutionCreate]]:
    nodes: dict[str, dict[str, NodeExecutionCreate]] = {}
    for run in runs:
        of_run = nodes.setdefault(run.id, {})
        for node in run.node_executions:
            seen = of_run.get(node.id)
            if seen is None or status_rank(node.status) >= status_rank(seen.status):
                of_run[node.id] = node
    return nodes


def _existing_runs(conn: Connection, run_ids: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """run_id -> (pk, tenant_id, workflow_pk) of the runs already stored."""
    found: dict[str, tuple[int, int, int]] = {}
    for start in range(0, len(run_ids), _CHUNK):
        chunk = run_ids[start : start + _CHUNK]
        rows = conn.exec_driver_sql(
            "SELECT run_id, id, tenant_id, workflow_pk FROM workflow_runs "
            f"WHERE run_id IN {dialect.in_list(conn, chunk)}",
            tuple(chunk),
        )
        for run_id, pk, tenant_id, workflow_pk in rows:
            found[run_id] = (pk, tenant_id, workflow_pk)
    return found


def ingest_runs(
    conn: Connection,
    tenant_id: int,
    runs: Sequence[RunCreate],
    *,
    prices: PriceBook,
    now_us: int | None = None,
) -> IngestResult:
    """Store or update every run of the batch; raises IngestRejected before writing a run."""
    now = _now_us() if now_us is None else now_us
    time_errors = time_order_errors(runs)
    if time_errors:
        raise IngestRejected(time_errors)
    position, latest = _dedupe(runs)
    run_ids = sorted(latest)
    workflow_pks = catalog.ensure_workflows(
        conn, tenant_id, {(r.app_id, r.workflow_id) for r in latest.values()}, now
    )
    existing = _existing_runs(conn, run_ids)

    errors: list[dict[str, Any]] = []
    for run_id, (_, owner, workflow_pk) in existing.items():
        run = latest[run_id]
        loc: tuple[Any, ...] = ("body", "runs", position[run_id])
        if owner != tenant_id:
            errors.append(_error((*loc, "id"), "this run id is already used by another tenant"))
        elif workflow_pk != workflow_pks[(run.app_id, run.workflow_id)]:
            errors.append(
                _error((*loc, "workflow_id"), "this run is already recorded under another workflow")
            )
    if errors:
        raise IngestRejected(sorted(errors, key=lambda e: e["loc"]))

    catalog.ensure_versions(
        conn,
        {
            (workflow_pks[(r.app_id, r.workflow_id)], r.workflow_version)
            for r in latest.values()
            if r.workflow_version is not None
        },
        now,
    )
    run_rows = []
    for run_id in run_ids:
        run = latest[run_id]
        run_rows.append(run_row(run, tenant_id, workflow_pks[(run.app_id, run.workflow_id)], now))
    dialect.bulk_upsert(conn, "workflow_runs", RUN_COLUMNS, ("run_id",), _RUN_UPDATE, run_rows)

    pks = {run_id: found[0] for run_id, found in existing.items()}
    new_ids = [rid for rid in run_ids if rid not in pks]
    pks.update({rid: found[0] for rid, found in _existing_runs(conn, new_ids).items()})

    node_rows = []
    for run_id, nodes in sorted(_nodes_by_run(runs).items()):
        run_pk = pks[run_id]
        node_rows.extend(node_row(nodes[nid], run_pk, prices) for nid in sorted(nodes))
    dialect.bulk_upsert(
        conn, "node_executions", NODE_COLUMNS, ("run_pk", "id"), _NODE_UPDATE, node_rows
    )

    touched = sorted(pks.values())
    for start in range(0, len(touched), _CHUNK):
        chunk = touched[start : start + _CHUNK]
        conn.exec_driver_sql(_RUN_TOTALS.format(ids=dialect.in_list(conn, chunk)), tuple(chunk))

    return IngestResult(
        accepted_runs=len(runs),
        accepted_node_executions=sum(len(r.node_executions) for r in runs),
    )


def _error(loc: tuple[Any, ...], msg: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": "value_error"}
