"""Reading runs back: one run with its node executions, and pages of a workflow's runs."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from sqlalchemy import Connection, Row, select

from flowscope.schemas.common import Page
from flowscope.schemas.runs import NodeExecutionPublic, RunPublic, RunSummaryPublic
from flowscope.store.tables import App, NodeExecution, Workflow, WorkflowRun
from flowscope.timeutil import from_us, maybe_from_us

_RUN_COLUMNS = (
    WorkflowRun.id,
    WorkflowRun.run_id,
    App.app_id,
    Workflow.workflow_id,
    WorkflowRun.workflow_version,
    WorkflowRun.status,
    WorkflowRun.started_at_us,
    WorkflowRun.finished_at_us,
    WorkflowRun.elapsed_ms,
    WorkflowRun.error,
    WorkflowRun.triggered_from,
    WorkflowRun.inputs_hash,
    WorkflowRun.total_tokens,
    WorkflowRun.prompt_tokens,
    WorkflowRun.completion_tokens,
    WorkflowRun.cost,
    WorkflowRun.currency,
    WorkflowRun.node_count,
    WorkflowRun.cache_hits,
    WorkflowRun.unpriced_node_executions,
)


class BadCursor(ValueError):
    """The cursor was not one this API handed out."""


def _run_fields(row: Row[Any]) -> dict[str, Any]:
    m = row._mapping
    return {
        "id": m["run_id"],
        "app_id": m["app_id"],
        "workflow_id": m["workflow_id"],
        "workflow_version": m["workflow_version"],
        "status": m["status"],
        "started_at": from_us(m["started_at_us"]),
        "finished_at": maybe_from_us(m["finished_at_us"]),
        "elapsed_ms": m["elapsed_ms"],
        "error": m["error"],
        "triggered_from": m["triggered_from"],
        "inputs_hash": m["inputs_hash"],
        "total_tokens": m["total_tokens"],
        "prompt_tokens": m["prompt_tokens"],
        "completion_tokens": m["completion_tokens"],
        "cost": m["cost"],
        "currency": m["currency"],
        "node_count": m["node_count"],
        "cache_hits": m["cache_hits"],
        "unpriced_node_executions": m["unpriced_node_executions"],
    }


def _node(n: Row[Any]) -> NodeExecutionPublic:
    details = orjson.loads(n.details) if n.details else {}
    return NodeExecutionPublic(
        id=n.id,
        node_id=n.node_id,
        node_type=n.node_type,
        title=details.get("title"),
        index=details.get("index"),
        predecessor_node_id=details.get("predecessor_node_id"),
        status=n.status,
        started_at=from_us(n.started_at_us),
        finished_at=maybe_from_us(n.finished_at_us),
        elapsed_ms=n.elapsed_ms,
        error=details.get("error"),
        model_provider=n.model_provider,
        model_name=n.model_name,
        prompt_tokens=n.prompt_tokens,
        completion_tokens=n.completion_tokens,
        total_tokens=n.total_tokens,
        cost=n.cost,
        currency=n.currency,
        cost_source=n.cost_source,
        cache_hit=bool(n.cache_hit),
        cache_lookup=details.get("cache_lookup", True if n.cache_hit else None),
        input_hash=n.input_hash,
        retry_count=n.retry_count,
        iteration_id=details.get("iteration_id"),
        iteration_index=details.get("iteration_index"),
        loop_id=details.get("loop_id"),
        loop_index=details.get("loop_index"),
        parent_id=n.parent_id,
        truncated=bool(details.get("truncated")),
    )


def _runs_query() -> Any:
    return (
        select(*_RUN_COLUMNS)
        .join(Workflow, Workflow.id == WorkflowRun.workflow_pk)
        .join(App, App.id == Workflow.app_pk)
    )


def read_run(conn: Connection, tenant_id: int, run_id: str) -> RunPublic | None:
    """The run with its node executions ordered by start, or None if not this tenant's."""
    row = conn.execute(
        _runs_query().where(WorkflowRun.run_id == run_id, WorkflowRun.tenant_id == tenant_id)
    ).first()
    if row is None:
        return None
    nodes = conn.execute(
        select(*NodeExecution.__table__.c)
        .where(NodeExecution.run_pk == row.id)
        .order_by(NodeExecution.started_at_us, NodeExecution.id)
    )
    return RunPublic(**_run_fields(row), node_executions=[_node(n) for n in nodes])


def encode_cursor(started_at_us: int, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{started_at_us}:{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        started, pk = raw.split(":")
        return int(started), int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadCursor("cursor is not valid: pass the next_cursor of a previous page") from exc


def read_runs(
    conn: Connection,
    workflow_pk: int,
    *,
    status: str | None = None,
    workflow_version: str | None = None,
    start_us: int | None = None,
    end_us: int | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[RunSummaryPublic]:
    """A page of the workflow's runs, newest first (keyset pagination on start time, id).

    Optional filters: status, version, and runs started in [start_us, end_us). The start-time
    bounds and the cursor are ranges on the index (workflow_pk, started_at_us, id); status
    and version are checked on the rows the index walk finds.
    """
    query = _runs_query().where(WorkflowRun.workflow_pk == workflow_pk)
    if status is not None:
        query = query.where(WorkflowRun.status == status)
    if workflow_version is not None:
        query = query.where(WorkflowRun.workflow_version == workflow_version)
    if start_us is not None:
        query = query.where(WorkflowRun.started_at_us >= start_us)
    if end_us is not None:
        query = query.where(WorkflowRun.started_at_us < end_us)
    if cursor is not None:
        started, pk = decode_cursor(cursor)
        # The plain upper bound lets both databases seek the index; the OR settles ties.
        query = query.where(
            WorkflowRun.started_at_us <= started,
            (WorkflowRun.started_at_us < started)
            | ((WorkflowRun.started_at_us == started) & (WorkflowRun.id < pk)),
        )
    query = query.order_by(WorkflowRun.started_at_us.desc(), WorkflowRun.id.desc())
    rows = conn.execute(query.limit(limit + 1)).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last.started_at_us, last.id)
    return Page[RunSummaryPublic](
        data=[RunSummaryPublic(**_run_fields(r)) for r in rows], next_cursor=next_cursor
    )
