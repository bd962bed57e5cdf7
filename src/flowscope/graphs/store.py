"""Registered workflow graphs: one per workflow and version ('' for every version)."""

from __future__ import annotations

import orjson
from sqlalchemy import Connection, select

from flowscope.graphs.model import WorkflowGraph
from flowscope.graphs.neutral import parse_json_graph
from flowscope.store import dialect
from flowscope.store.tables import WorkflowGraphRow

ANY_VERSION = ""


def write_graph(
    conn: Connection, workflow_pk: int, graph: WorkflowGraph, now_us: int, version: str = ""
) -> None:
    """Register (or replace) the graph of a workflow, for one version or for all ('')."""
    columns = ("workflow_pk", "workflow_version", "format", "dsl_version", "graph",
               "node_count", "updated_at_us")  # fmt: skip
    update = "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in columns[2:])
    row = (workflow_pk, version, graph.format, graph.dsl_version,
           orjson.dumps(graph.to_json()).decode(), len(graph.nodes), now_us)  # fmt: skip
    dialect.bulk_upsert(
        conn, "workflow_graphs", columns, ("workflow_pk", "workflow_version"), update, [row]
    )


def read_graph(
    conn: Connection, workflow_pk: int, version: str | None = None
) -> tuple[WorkflowGraph, str, int] | None:
    """The graph for `version` if one was registered for it, else the all-versions graph:
    (graph, the version it was registered for, updated_at_us), or None."""
    rows = conn.execute(
        select(
            WorkflowGraphRow.workflow_version,
            WorkflowGraphRow.graph,
            WorkflowGraphRow.updated_at_us,
        ).where(
            WorkflowGraphRow.workflow_pk == workflow_pk,
            WorkflowGraphRow.workflow_version.in_({ANY_VERSION, version or ANY_VERSION}),
        )
    ).all()
    if not rows:
        return None
    found = {row[0]: row for row in rows}
    row = found.get(version or ANY_VERSION) or found[ANY_VERSION]
    return parse_json_graph(orjson.loads(row[1])), row[0], row[2]


def read_latest_graph(conn: Connection, workflow_pk: int) -> tuple[WorkflowGraph, str, int] | None:
    """The most recently registered graph of the workflow, whatever its version."""
    row = conn.execute(
        select(
            WorkflowGraphRow.workflow_version,
            WorkflowGraphRow.graph,
            WorkflowGraphRow.updated_at_us,
        )
        .where(WorkflowGraphRow.workflow_pk == workflow_pk)
        .order_by(WorkflowGraphRow.updated_at_us.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return parse_json_graph(orjson.loads(row[1])), row[0], row[2]
