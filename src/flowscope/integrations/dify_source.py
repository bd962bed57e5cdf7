"""Reading a self-hosted Dify's PostgreSQL database, strictly read-only.

Dify's database is not flowscope's: it is reached with psycopg directly, the session is made
read-only before the first query (PostgreSQL then refuses any write, whatever the role may
do), and only `workflow_runs`, `workflow_node_executions` and, when it exists (Dify 1.9+),
`workflow_node_execution_offload` are read, with named columns. Each batch is read in one
repeatable-read transaction, so a run and its node executions are one consistent snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import IsolationLevel
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from flowscope.timeutil import from_us

DifyConnection = psycopg.Connection[dict[str, Any]]
Position = tuple[int, str]  # (created_at in UTC microseconds, run id)

RUN_COLUMNS = (
    "id", "tenant_id", "app_id", "workflow_id", "type", "triggered_from", "version", "inputs",
    "status", "error", "elapsed_time", "total_tokens", "created_at", "finished_at",
)  # fmt: skip
NODE_COLUMNS = (
    "id", "workflow_run_id", "index", "predecessor_node_id", "node_id", "node_type", "title",
    "inputs", "process_data", "outputs", "status", "error", "elapsed_time",
    "execution_metadata", "created_at", "finished_at",
)  # fmt: skip
# Quoted: `index` is an SQL keyword.
_NODE_SELECT = ", ".join(f'"{column}"' for column in NODE_COLUMNS)
_TABLES = {"workflow_runs": RUN_COLUMNS, "workflow_node_executions": NODE_COLUMNS}
# Dify 1.9+: one row per value moved to storage, `node_execution_id` the node row's id, `type`
# inputs, process_data or outputs (api/models/workflow.py, WorkflowNodeExecutionOffload).
OFFLOAD_TABLE = "workflow_node_execution_offload"


class DifySourceError(Exception):
    """Dify's database cannot be reached, or does not have Dify's tables."""


def shown_url(url: str) -> str:
    """The URL as it may be printed: never with its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # a libpq "key=value" string
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            return "(unparsable connection string)"
        params.pop("password", None)
        return make_conninfo("", **params)


def _libpq(url: str) -> str:
    """SQLAlchemy-style URLs (`postgresql+psycopg://`) accepted too, for one URL style."""
    if url.startswith("postgresql+"):
        return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return url


def connect_dify(url: str, *, connect_timeout: int = 10) -> DifyConnection:
    """A read-only session on Dify's database, its tables checked; DifySourceError says why
    not (naming the URL without its password)."""
    try:
        conn = psycopg.connect(
            _libpq(url), autocommit=True, row_factory=dict_row, connect_timeout=connect_timeout
        )
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or ["connection failed"])[0]
        raise DifySourceError(
            f"cannot reach Dify's database at {shown_url(url)}: {reason}"
        ) from None
    try:
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        _check_tables(conn, shown_url(url))
    except BaseException:
        conn.close()
        raise
    return conn


def _check_tables(conn: DifyConnection, shown: str) -> None:
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
        (list(_TABLES),),
    ).fetchall()
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row["table_name"], set()).add(row["column_name"])
    for table, columns in _TABLES.items():
        if table not in found:
            raise DifySourceError(
                f"{shown} has no table {table}: is this Dify's database (Dify 0.6 or later)?"
            )
        missing = sorted(set(columns) - found[table])
        if missing:
            raise DifySourceError(
                f"{shown}: table {table} lacks the column(s) {', '.join(missing)} "
                "that Dify's workflow tables have"
            )


def source_key(conn: DifyConnection, dify_tenant: UUID | None) -> str:
    """`dify:<host>:<port>/<dbname>[#<tenant>]`: which cursor an import continues."""
    info = conn.info
    key = f"dify:{info.host}:{info.port}/{info.dbname}"
    return key if dify_tenant is None else f"{key}#{dify_tenant}"


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which Dify runs an import takes: one Dify tenant's (workspace's), from a date on."""

    dify_tenant: UUID | None = None
    since: datetime | None = None

    def where(self, position: Position | None) -> tuple[str, list[Any]]:
        """The WHERE clause of the runs after `position` that pass the filter."""
        clauses, params = ["TRUE"], []
        if position is not None:
            clauses.append("(created_at, id) > (%s, %s::uuid)")
            params += [_naive_utc(from_us(position[0])), position[1]]
        if self.dify_tenant is not None:
            clauses.append("tenant_id = %s")
            params.append(self.dify_tenant)
        if self.since is not None:
            clauses.append("created_at >= %s")
            params.append(_naive_utc(self.since))
        return " AND ".join(clauses), params


def _naive_utc(value: datetime) -> datetime:
    """Dify's columns are `timestamp` (naive UTC); a naive `since` is taken as UTC."""
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def count_runs_after(conn: DifyConnection, position: Position | None, runs: RunFilter) -> int:
    where, params = runs.where(position)
    row = conn.execute(f"SELECT count(*) AS n FROM workflow_runs WHERE {where}", params).fetchone()
    return 0 if row is None else int(row["n"])


RunRows = list[tuple[dict[str, Any], list[dict[str, Any]]]]


def read_runs_after(
    conn: DifyConnection, position: Position | None, runs: RunFilter, limit: int
) -> RunRows:
    """The next `limit` runs after `position` in (created_at, id) order, with their nodes."""
    where, params = runs.where(position)
    with conn.transaction():
        rows = conn.execute(
            f"SELECT {', '.join(RUN_COLUMNS)} FROM workflow_runs WHERE {where} "
            "ORDER BY created_at, id LIMIT %s",
            [*params, limit],
        ).fetchall()
        return _with_nodes(conn, rows)


def read_runs_by_id(conn: DifyConnection, run_ids: Sequence[str]) -> RunRows:
    """These runs (those still in Dify's database) with their nodes, in (created_at, id)
    order."""
    with conn.transaction():
        rows = conn.execute(
            f"SELECT {', '.join(RUN_COLUMNS)} FROM workflow_runs WHERE id = ANY(%s::uuid[]) "
            "ORDER BY created_at, id",
            (list(run_ids),),
        ).fetchall()
        return _with_nodes(conn, rows)


def _with_nodes(conn: DifyConnection, runs: list[dict[str, Any]]) -> RunRows:
    """All node executions of these runs, in one query, each with the sorted list of its
    offloaded columns as `offloaded` (empty before Dify 1.9)."""
    by_run: dict[str, list[dict[str, Any]]] = {str(run["id"]): [] for run in runs}
    if by_run:
        nodes = conn.execute(
            f"SELECT {_NODE_SELECT} FROM workflow_node_executions "
            'WHERE workflow_run_id = ANY(%s::uuid[]) ORDER BY created_at, "index", id',
            (list(by_run),),
        ).fetchall()
        offloaded = _offloaded(conn, [node["id"] for node in nodes])
        for node in nodes:
            node["offloaded"] = sorted(offloaded.get(str(node["id"]), ()))
            by_run[str(node["workflow_run_id"])].append(node)
    return [(run, by_run[str(run["id"])]) for run in runs]


def _offloaded(conn: DifyConnection, node_ids: Sequence[Any]) -> dict[str, set[str]]:
    """node execution id -> the columns Dify offloaded (keeping a cut copy in the row), by
    the offload table's unique (node_execution_id, type) index; {} without the table."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL AS present", (OFFLOAD_TABLE,))
    found = row.fetchone()
    if not node_ids or found is None or not found["present"]:
        return {}
    by_node: dict[str, set[str]] = {}
    for offload in conn.execute(
        f"SELECT node_execution_id, type FROM {OFFLOAD_TABLE} "
        "WHERE node_execution_id = ANY(%s::uuid[])",
        ([str(node_id) for node_id in node_ids],),
    ):
        by_node.setdefault(str(offload["node_execution_id"]), set()).add(str(offload["type"]))
    return by_node
