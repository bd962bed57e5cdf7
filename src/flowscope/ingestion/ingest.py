"""Idempotent ingestion of workflow runs and their node executions.

Run ids and (run, node execution id) are keys: re-sending changes nothing, a later status or
more node executions update the run, and a report never moves a finished run back to running,
whatever the order of arrival. Run totals (tokens, cost, node count, cache hits) are recomputed
from the stored node executions, so they never double. The caller owns the transaction: on
`IngestRejected` it rolls back and nothing of the batch is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Connection

from flowscope import catalog
from flowscope.problems import IngestRejected, Problem
from flowscope.rollups.figures import Contribution, Deltas, contribution
from flowscope.rollups.write import StoredRun, apply_deltas, read_stored_runs
from flowscope.runs.pricing import PriceBook
from flowscope.runs.rows import (
    NO_NODES,
    RunTotals,
    node_row,
    run_row,
    run_totals,
    time_problems,
)
from flowscope.schemas.runs import IngestResult, NodeExecutionCreate, RunCreate
from flowscope.store import dialect
from flowscope.store.rows import (
    NODE_COLUMNS,
    RUN_COLUMNS,
    NodeRow,
    RunRow,
    rank_sql,
    status_rank,
)
from flowscope.timeutil import from_us, to_us
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


# Columns a report without them leaves as stored; the others it always sets.
_RUN_OPTIONAL = (
    "workflow_version",
    "finished_at_us",
    "elapsed_ms",
    "error",
    "triggered_from",
    "inputs_hash",
    "reported_total_tokens",
)
_RUN_UPDATE = (
    "DO UPDATE SET "
    + _set(
        ("status", "status_rank", "started_at_us", "updated_at_us", *_RUN_OPTIONAL),
        "workflow_runs",
        frozenset(_RUN_OPTIONAL),
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


def _node_update(conn: Connection) -> str:
    """A node reported again: optional columns keep a known value the report lacks. Its
    details too, key by key, when the report is of the same stage (a finished node from a
    second source, say Dify's trace after its database, which know different things); a
    report of a later stage replaces them. The error is never carried over."""
    old, new = rank_sql("node_executions"), rank_sql("excluded")
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


class _Stored(NamedTuple):
    pk: int
    workflow_pk: int


def _existing_runs(conn: Connection, tenant_id: int, run_ids: Sequence[str]) -> dict[str, _Stored]:
    """The tenant's runs of these ids already stored, by run id (run ids are the tenant's
    own: another tenant's run of the same id is another run)."""
    found: dict[str, _Stored] = {}
    tenant = dialect.mark(conn)
    for start in range(0, len(run_ids), _CHUNK):
        chunk = run_ids[start : start + _CHUNK]
        where, params = dialect.any_of(conn, "run_id", chunk)
        rows = conn.exec_driver_sql(
            "SELECT run_id, id, workflow_pk FROM workflow_runs "
            f"WHERE tenant_id = {tenant} AND {where}",
            (tenant_id, *params),
        )
        for run_id, pk, workflow_pk in rows:
            found[run_id] = _Stored(pk, workflow_pk)
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
    reports: Sequence[RunCreate]  # the runs as sent, to say where a problem stands
    node_rows: dict[str, list[NodeRow]]  # by run id; run_pk is 0 until written
    totals: dict[str, RunTotals]
    contributions: dict[str, Contribution]  # what each run adds to rollups if it is new
    fresh: Deltas  # their sum, by (app_id, workflow_id) in place of the workflow pk
    accepted_runs: int
    accepted_node_executions: int


def prepare_batch(runs: Sequence[RunCreate], *, prices: PriceBook) -> PreparedBatch:
    """Everything ingestion computes from the batch alone; raises IngestRejected."""
    backwards = time_problems(runs)
    if backwards:
        raise IngestRejected(backwards)
    position, latest = _dedupe(runs)
    node_rows = {
        run_id: [node_row(nodes[nid], 0, prices) for nid in sorted(nodes)]
        for run_id, nodes in _nodes_by_run(runs).items()
    }
    totals = {run_id: run_totals(rows) for run_id, rows in node_rows.items()}
    # Rollup contributions of runs that turn out to be new are final here, so they are
    # computed outside the write transaction; re-sent runs are corrected inside it.
    contributions, fresh = {}, Deltas()
    for run_id, run in latest.items():
        row = run_row(run, 0, 0, 0, totals.get(run_id, NO_NODES))
        item = contributions[run_id] = contribution(row, node_rows.get(run_id, []))
        fresh.add((run["app_id"], run["workflow_id"]), item, +1)
    return PreparedBatch(
        runs=latest,
        position=position,
        reports=runs,
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
    dialect.lock_keys(conn, [f"{tenant_id}:{run_id}" for run_id in run_ids])
    existing = _existing_runs(conn, tenant_id, run_ids)
    _check_workflows(batch, existing, workflow_pks)
    before = read_stored_runs(conn, sorted(found.pk for found in existing.values()))
    _check_stored_ends(batch, existing, before)
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
    # already had node executions stored are recomputed once their nodes are in.
    run_rows = []
    for run_id in run_ids:
        run = latest[run_id]
        totals = NO_NODES if run_id in existing else batch.totals.get(run_id, NO_NODES)
        workflow_pk = workflow_pks[(run["app_id"], run["workflow_id"])]
        run_rows.append(run_row(run, tenant_id, workflow_pk, now, totals))
    upserted = dialect.upsert_keyed(
        conn,
        "workflow_runs",
        RUN_COLUMNS,
        "run_id",
        _RUN_UPDATE,
        run_rows,
        known={run_id: found.pk for run_id, found in existing.items()},
        scope=("tenant_id", tenant_id),
    )
    pks = upserted.pks
    stale = sorted(pks[run_id] for run_id in run_ids if run_id not in upserted.inserted)
    dialect.bulk_upsert(
        conn,
        "node_executions",
        NODE_COLUMNS,
        ("run_pk", "id"),
        _node_update(conn),
        [
            (pks[run_id], *row[1:])
            for run_id in sorted(batch.node_rows)
            for row in batch.node_rows[run_id]
        ],
    )
    after = _recompute_totals(conn, stale)
    _update_rollups(conn, batch, workflow_pks, pks, before, after)
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
    after: dict[int, StoredRun],
) -> None:
    """Add what the batch's runs contribute; for re-sent runs, take back what they contributed
    before and add what they contribute now, from their stored state."""
    corrections = Deltas()
    for run_id, run in batch.runs.items():
        if pks[run_id] in after:  # prepared as new, but it was not
            workflow = workflow_pks[(run["app_id"], run["workflow_id"])]
            corrections.add(workflow, batch.contributions[run_id], -1)
    for stored in before.values():
        corrections.add(stored.run.workflow_pk, contribution(*stored), -1)
    for stored in after.values():
        corrections.add(stored.run.workflow_pk, contribution(*stored), +1)
    # The prepared deltas are left as they are (a batch may be written again after a rollback).
    deltas = batch.fresh.with_workflows(workflow_pks)
    if corrections.runs:
        deltas = deltas.merged(corrections.complete())
    apply_deltas(conn, deltas)


def _check_workflows(
    batch: PreparedBatch, existing: dict[str, _Stored], workflow_pks: dict[tuple[str, str], int]
) -> None:
    """A stored run stays under its workflow."""
    problems = [
        Problem(
            batch.position[run_id],
            "workflow_id",
            "this run is already recorded under another workflow",
        )
        for run_id, stored in existing.items()
        if stored.workflow_pk
        != workflow_pks[(batch.runs[run_id]["app_id"], batch.runs[run_id]["workflow_id"])]
    ]
    if problems:
        raise IngestRejected(problems)


_AFTER_STORED_END = (
    "started_at is after the finished_at already stored for it ({end}): send its finished_at too"
)


def _check_stored_ends(
    batch: PreparedBatch, existing: dict[str, _Stored], before: dict[int, StoredRun]
) -> None:
    """A report without finished_at keeps the one stored (optional columns do); starting
    after it, it would store a run or node execution that ends before it began."""
    problems: list[Problem] = []
    for run_id, found in existing.items():
        stored = before[found.pk]
        run = batch.runs[run_id]
        if _starts_after_stored_end(
            run["status"], to_us(run["started_at"]), run.get("finished_at"), stored.run
        ):
            at, _ = _where(batch.reports, run_id, None, run["status"])
            problems.append(Problem(at, "started_at", _stored_end(stored.run)))
        stored_nodes = {node.id: node for node in stored.nodes}
        for row in batch.node_rows.get(run_id, ()):
            node = stored_nodes.get(row.id)
            if node is not None and _starts_after_stored_end(
                row.status, row.started_at_us, row.finished_at_us, node
            ):
                at, j = _where(batch.reports, run_id, row.id, row.status)
                problems.append(Problem(at, "started_at", _stored_end(node), node=j))
    if problems:
        raise IngestRejected(problems)


def _starts_after_stored_end(
    status: str, started_us: int, finished: object, stored: RunRow | NodeRow
) -> bool:
    return (
        finished is None
        and stored.finished_at_us is not None
        and status_rank(status) >= status_rank(stored.status)  # else the report is not applied
        and started_us > stored.finished_at_us
    )


def _stored_end(stored: RunRow | NodeRow) -> str:
    assert stored.finished_at_us is not None
    return _AFTER_STORED_END.format(end=from_us(stored.finished_at_us).isoformat())


def _where(
    reports: Sequence[RunCreate], run_id: str, node_id: str | None, status: str
) -> tuple[int, int | None]:
    """Where the report that won stands: the last one of the highest rank (see _dedupe)."""
    rank = status_rank(status)
    for i in reversed(range(len(reports))):
        report = reports[i]
        if report["id"] != run_id:
            continue
        if node_id is None:
            if status_rank(report["status"]) == rank:
                return i, None
            continue
        nodes = report.get("node_executions", ())
        for j in reversed(range(len(nodes))):
            if nodes[j]["id"] == node_id and status_rank(nodes[j]["status"]) == rank:
                return i, j
    raise AssertionError(f"no report of {run_id}/{node_id} in the batch")


def _recompute_totals(conn: Connection, run_pks: Sequence[int]) -> dict[int, StoredRun]:
    """Recompute the figures of these runs from every node execution stored for them (the
    rule of new runs, `run_totals`); the runs as they now stand."""
    after = read_stored_runs(conn, run_pks)
    updates = []
    for pk, stored in after.items():
        totals = run_totals(stored.nodes).stored(stored.run.reported_total_tokens)
        after[pk] = stored._replace(run=stored.run._replace(**totals._asdict()))
        updates.append((*totals, pk))
    dialect.update_many(conn, "workflow_runs", "id", RunTotals._fields, updates)
    return after
