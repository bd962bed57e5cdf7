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
from flowscope.rollups.figures import Contribution, Deltas, contribution, run_state
from flowscope.rollups.write import StoredRun, apply_deltas, read_stored_runs
from flowscope.runs.pricing import PriceBook
from flowscope.runs.rows import (
    NO_NODES,
    RunTotals,
    node_row,
    run_row,
    run_totals,
    time_order_errors,
)
from flowscope.schemas.runs import IngestResult, NodeExecutionCreate, RunCreate
from flowscope.store import dialect
from flowscope.store.rows import NODE_COLUMNS, RUN_COLUMNS, status_rank
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


def _node_update(conn: Connection) -> str:
    """A node reported again: optional columns keep a known value the report lacks. Its
    details too, key by key, when the report is of the same stage (a finished node from a
    second source, say Dify's trace after its database, which know different things); a
    report of a later stage replaces them. The error is never carried over."""
    old, new = _NODE_RANK.format(t="node_executions"), _NODE_RANK.format(t="excluded")
    merged = dialect.json_patch(
        conn, "node_executions.details", "excluded.details", dropped="error"
    )
    details = (
        "details = CASE WHEN excluded.details IS NULL THEN node_executions.details "
        f"WHEN node_executions.details IS NULL OR {new} > {old} THEN excluded.details "
        f"ELSE {merged} END"
    )
    columns = [c for c in NODE_COLUMNS[2:] if c != "details"]
    return (
        f"DO UPDATE SET {_set(columns, 'node_executions', _NODE_OPTIONAL)}, {details} "
        f"WHERE {new} >= {old}"
    )


# A container (iteration, loop) may already include its children's tokens and cost, as
# Dify's do: a child's figure counts towards the run only when its container reports none
# itself (figure by figure: a container with a total but no split leaves the split to them).
# The CTE bounds the self-join to the runs just written, whatever the table's size.
_RUN_TOTALS = """
WITH n AS (
    SELECT run_pk, id, parent_id, cache_hit, cost_source, prompt_tokens, completion_tokens,
        total_tokens, cost, currency
    FROM node_executions WHERE {runs_of_nodes}
),
a AS (
    SELECT r.id AS run_pk,
        COUNT(n.id) AS node_count,
        COALESCE(SUM(CASE WHEN n.cache_hit THEN 1 ELSE 0 END), 0) AS cache_hits,
        COALESCE(SUM(CASE WHEN n.cost_source = 'unpriced' THEN 1 ELSE 0 END), 0) AS unpriced,
        SUM(CASE WHEN p.prompt_tokens IS NULL THEN n.prompt_tokens END) AS prompt_tokens,
        SUM(CASE WHEN p.completion_tokens IS NULL THEN n.completion_tokens END)
            AS completion_tokens,
        SUM(CASE WHEN p.total_tokens IS NULL THEN n.total_tokens END) AS total_tokens,
        SUM(CASE WHEN p.cost IS NULL THEN n.cost END) AS cost,
        COALESCE(MAX(CASE WHEN n.cost IS NOT NULL THEN n.currency END), 'USD') AS currency
    FROM workflow_runs r
    LEFT JOIN n ON n.run_pk = r.id
    LEFT JOIN n AS p ON p.run_pk = n.run_pk AND p.id = n.parent_id
    WHERE {runs}
    GROUP BY r.id
)
UPDATE workflow_runs SET
    node_count = a.node_count,
    cache_hits = a.cache_hits,
    unpriced_node_executions = a.unpriced,
    prompt_tokens = a.prompt_tokens,
    completion_tokens = a.completion_tokens,
    total_tokens = COALESCE(workflow_runs.reported_total_tokens, a.total_tokens),
    cost = a.cost,
    currency = a.currency
FROM a
WHERE workflow_runs.id = a.run_pk
"""


@dataclass
class IngestRejected(Exception):
    """The batch names something it may not touch; nothing of it may be kept."""

    errors: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in self.errors)

    def by_run(self) -> dict[int, str]:
        """The messages of each refused run, by its position in the batch (importers drop
        those runs and write the rest again)."""
        found: dict[int, list[str]] = {}
        for error in self.errors:
            loc = error.get("loc", ())
            if len(loc) > 2 and isinstance(loc[2], int):
                found.setdefault(loc[2], []).append(error["msg"])
        return {position: "; ".join(messages) for position, messages in found.items()}


def _dedupe(runs: Sequence[RunCreate]) -> tuple[dict[str, int], dict[str, RunCreate]]:
    """The last report of each run id with the highest rank, and where it stood in the batch."""
    index: dict[str, int] = {}
    latest: dict[str, RunCreate] = {}
    for i, run in enumerate(runs):
        run_id = run["id"]
        seen = latest.get(run_id)
        if seen is None or status_rank(run["status"]) >= status_rank(seen["status"]):
            latest[run_id] = run
        index.setdefault(run_id, i)
    return index, latest


def _nodes_by_run(runs: Sequence[RunCreate]) -> dict[str, dict[str, NodeExecutionCreate]]:
    nodes: dict[str, dict[str, NodeExecutionCreate]] = {}
    for run in runs:
        of_run = nodes.setdefault(run["id"], {})
        for node in run.get("node_executions", ()):
            seen = of_run.get(node["id"])
            if seen is None or status_rank(node["status"]) >= status_rank(seen["status"]):
                of_run[node["id"]] = node
    return nodes


def _existing_runs(conn: Connection, run_ids: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """run_id -> (pk, tenant_id, workflow_pk) of the runs already stored."""
    found: dict[str, tuple[int, int, int]] = {}
    for start in range(0, len(run_ids), _CHUNK):
        chunk = run_ids[start : start + _CHUNK]
        where, params = dialect.any_of(conn, "run_id", chunk)
        rows = conn.exec_driver_sql(
            f"SELECT run_id, id, tenant_id, workflow_pk FROM workflow_runs WHERE {where}", params
        )
        for run_id, pk, tenant_id, workflow_pk in rows:
            found[run_id] = (pk, tenant_id, workflow_pk)
    return found


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch made ready to write, without touching the database.

    Checked, de-duplicated, priced, turned into rows, and each run's totals computed: all the
    Python work of ingestion, done before the write transaction so that concurrent server
    workers only queue for the database's write lock to run SQL.
    """

    runs: dict[str, RunCreate]  # the report of each run id that wins, by id
    position: dict[str, int]  # where each run id first stood in the request
    node_rows: dict[str, list[tuple[Any, ...]]]  # by run id; run_pk (column 0) filled at write
    totals: dict[str, RunTotals]
    contributions: dict[str, Contribution]  # what each run adds to rollups if it is new
    fresh: Deltas  # their sum, by (app_id, workflow_id) in place of the workflow pk
    accepted_runs: int
    accepted_node_executions: int


def prepare_batch(runs: Sequence[RunCreate], *, prices: PriceBook) -> PreparedBatch:
    """Everything ingestion computes from the batch alone; raises IngestRejected."""
    time_errors = time_order_errors(runs)
    if time_errors:
        raise IngestRejected(time_errors)
    position, latest = _dedupe(runs)
    node_rows = {
        run_id: [node_row(nodes[nid], None, prices) for nid in sorted(nodes)]
        for run_id, nodes in _nodes_by_run(runs).items()
    }
    totals = {run_id: run_totals(rows) for run_id, rows in node_rows.items()}
    # Rollup contributions of runs that turn out to be new are final here, so they are
    # computed outside the write transaction; re-sent runs are corrected inside it.
    contributions, fresh = {}, Deltas()
    for run_id, run in latest.items():
        state = run_state(run_row(run, 0, 0, 0, totals.get(run_id, NO_NODES)))
        item = contributions[run_id] = contribution(state, node_rows.get(run_id, []))
        fresh.add((run["app_id"], run["workflow_id"]), item, +1)
    return PreparedBatch(
        runs=latest,
        position=position,
        node_rows=node_rows,
        totals=totals,
        contributions=contributions,
        fresh=fresh.complete(),
        accepted_runs=len(runs),
        accepted_node_executions=sum(len(r.get("node_executions", ())) for r in runs),
    )


def ingest_runs(
    conn: Connection,
    tenant_id: int,
    runs: Sequence[RunCreate],
    *,
    prices: PriceBook,
    now_us: int | None = None,
) -> IngestResult:
    """Store or update every run of the batch; raises IngestRejected before writing a run."""
    return write_batch(conn, tenant_id, prepare_batch(runs, prices=prices), now_us=now_us)


def write_batch(
    conn: Connection, tenant_id: int, batch: PreparedBatch, *, now_us: int | None = None
) -> IngestResult:
    """Write a prepared batch in the caller's transaction; raises IngestRejected first."""
    now = _now_us() if now_us is None else now_us
    latest = batch.runs
    run_ids = sorted(latest)
    workflow_pks = catalog.ensure_workflows(
        conn, tenant_id, {(r["app_id"], r["workflow_id"]) for r in latest.values()}, now
    )
    # Concurrent batches that share a run wait for each other here (PostgreSQL), so each reads
    # the state the other left, and rollup deltas are taken against it.
    dialect.lock_keys(conn, run_ids)
    existing = _existing_runs(conn, run_ids)
    _check_ownership(batch, existing, tenant_id, workflow_pks)
    before = read_stored_runs(conn, sorted(found[0] for found in existing.values()))
    catalog.ensure_versions(
        conn,
        {
            (workflow_pks[(r["app_id"], r["workflow_id"])], version)
            for r in latest.values()
            if (version := r.get("workflow_version")) is not None
        },
        now,
    )
    # A new run's totals come from the prepared rows and are written with it; runs that
    # already had node executions stored are recomputed in SQL once their nodes are in.
    run_rows = []
    for run_id in run_ids:
        run = latest[run_id]
        totals = NO_NODES if run_id in existing else batch.totals.get(run_id, NO_NODES)
        workflow_pk = workflow_pks[(run["app_id"], run["workflow_id"])]
        run_rows.append(run_row(run, tenant_id, workflow_pk, now, totals))
    written = dialect.bulk_upsert(
        conn,
        "workflow_runs",
        RUN_COLUMNS,
        ("run_id",),
        _RUN_UPDATE,
        run_rows,
        report_inserted="run_id, id",
    )

    pks = {run_id: found[0] for run_id, found in existing.items()}
    if written is None:  # SQLite: writers are serialised, what we read still holds
        new_ids = [rid for rid in run_ids if rid not in pks]
        pks.update({rid: found[0] for rid, found in _existing_runs(conn, new_ids).items()})
        stale = sorted(pks[rid] for rid in existing)
    else:  # PostgreSQL: a run may have been inserted by a concurrent writer meanwhile
        pks.update({rid: pk for rid, pk, _ in written})
        missing = [rid for rid in run_ids if rid not in pks]
        pks.update({rid: found[0] for rid, found in _existing_runs(conn, missing).items()})
        inserted = {rid for rid, _, was_inserted in written if was_inserted}
        stale = sorted(pks[rid] for rid in run_ids if rid not in inserted)

    node_rows = batch.node_rows
    dialect.bulk_upsert(
        conn,
        "node_executions",
        NODE_COLUMNS,
        ("run_pk", "id"),
        _node_update(conn),
        [(pks[run_id], *row[1:]) for run_id in sorted(node_rows) for row in node_rows[run_id]],
    )
    _recompute_totals(conn, stale)
    _update_rollups(conn, batch, workflow_pks, pks, before, stale)
    return IngestResult(
        accepted_runs=batch.accepted_runs,
        accepted_node_executions=batch.accepted_node_executions,
    )


def _update_rollups(
    conn: Connection,
    batch: PreparedBatch,
    workflow_pks: dict[tuple[str, str], int],
    pks: dict[str, int],
    before: dict[int, StoredRun],
    stale: Sequence[int],
) -> None:
    """Add what the batch's runs contribute; for re-sent runs, take back what they contributed
    before and add what they contribute now, from their stored state."""
    corrections = Deltas()
    stale_set = set(stale)
    for run_id, run in batch.runs.items():
        if pks[run_id] in stale_set:  # prepared as new, but it was not
            workflow = workflow_pks[(run["app_id"], run["workflow_id"])]
            corrections.add(workflow, batch.contributions[run_id], -1)
    for workflow_pk, state, nodes in before.values():
        corrections.add(workflow_pk, contribution(state, nodes), -1)
    for workflow_pk, state, nodes in read_stored_runs(conn, stale).values():
        corrections.add(workflow_pk, contribution(state, nodes), +1)
    # The prepared deltas are left as they are (a batch may be written again after a rollback).
    deltas = batch.fresh.with_workflows(workflow_pks)
    if corrections.runs:
        deltas = deltas.merged(corrections.complete())
    apply_deltas(conn, deltas)


def _check_ownership(
    batch: PreparedBatch,
    existing: dict[str, tuple[int, int, int]],
    tenant_id: int,
    workflow_pks: dict[tuple[str, str], int],
) -> None:
    """A stored run may be updated only by its tenant and under its workflow."""
    errors: list[dict[str, Any]] = []
    for run_id, (_, owner, workflow_pk) in existing.items():
        run = batch.runs[run_id]
        loc: tuple[Any, ...] = ("body", "runs", batch.position[run_id])
        if owner != tenant_id:
            errors.append(_error((*loc, "id"), "this run id is already used by another tenant"))
        elif workflow_pk != workflow_pks[(run["app_id"], run["workflow_id"])]:
            errors.append(
                _error((*loc, "workflow_id"), "this run is already recorded under another workflow")
            )
    if errors:
        raise IngestRejected(sorted(errors, key=lambda e: e["loc"]))


def _recompute_totals(conn: Connection, run_pks: Sequence[int]) -> None:
    """Recompute run figures from every stored node execution of these runs."""
    for start in range(0, len(run_pks), _CHUNK):
        chunk = run_pks[start : start + _CHUNK]
        of_nodes, node_params = dialect.any_of(conn, "run_pk", chunk)
        of_runs, run_params = dialect.any_of(conn, "r.id", chunk)
        conn.exec_driver_sql(
            _RUN_TOTALS.format(runs_of_nodes=of_nodes, runs=of_runs), node_params + run_params
        )


def _error(loc: tuple[Any, ...], msg: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": "value_error"}
