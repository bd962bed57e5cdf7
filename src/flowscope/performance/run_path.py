"""One run's critical path, node by node, with each node's slack (from its raw rows)."""

from __future__ import annotations

from sqlalchemy import Connection

from flowscope.analytics.critical_path import Execution, Schedule
from flowscope.runs.read import read_run
from flowscope.runs.rows import UNFINISHED
from flowscope.schemas.performance import PathChild, PathStep, RunCriticalPath
from flowscope.schemas.runs import NodeExecutionPublic, RunPublic
from flowscope.timeutil import to_us


def read_critical_path(conn: Connection, tenant_id: int, run_id: str) -> RunCriticalPath | None:
    """None when the tenant has no such run."""
    run = read_run(conn, tenant_id, run_id)
    return None if run is None else run_critical_path(run)


def run_critical_path(run: RunPublic) -> RunCriticalPath:
    """The critical path of a run already read (with its node executions). Iteration and
    loop children count inside their container; unfinished node executions are left out."""
    run_start = to_us(run.started_at)
    run_end = None if run.finished_at is None else to_us(run.finished_at)
    top = [
        n
        for n in run.node_executions
        if n.parent_id is None and n.finished_at is not None and n.status not in UNFINISHED
    ]
    children: dict[str, list[NodeExecutionPublic]] = {}
    for n in run.node_executions:
        if n.parent_id is not None:
            children.setdefault(n.parent_id, []).append(n)
    result = RunCriticalPath(
        run_id=run.id,
        status=run.status,
        duration_ms=run.elapsed_ms,
        critical_path=[],
        critical_path_ms=0.0,
        steps=[],
    )
    if not top:
        return result
    schedule = Schedule(
        (
            Execution(n.id, n.node_id, to_us(n.started_at), to_us(end), n.predecessor_node_id)
            for n in top
            if (end := n.finished_at) is not None
        ),
        run_start_us=run_start,
        run_end_us=run_end,
    )
    path = schedule.critical_path()
    by_id = {n.id: n for n in top}
    start = schedule.run_start_us
    for step in path.steps:
        node = by_id[step.id]
        result.steps.append(
            PathStep(
                id=step.id,
                node_id=step.node_id,
                node_type=node.node_type,
                title=node.title,
                status=node.status,
                start_offset_ms=(step.start_us - start) / 1000.0,
                duration_ms=(step.end_us - step.start_us) / 1000.0,
                slack_ms=step.slack_us / 1000.0,
                on_critical_path=step.on_critical_path,
                children=[
                    PathChild(
                        id=c.id,
                        node_id=c.node_id,
                        node_type=c.node_type,
                        status=c.status,
                        start_offset_ms=(to_us(c.started_at) - start) / 1000.0,
                        duration_ms=c.elapsed_ms,
                    )
                    for c in sorted(children.get(step.id, ()), key=lambda c: (c.started_at, c.id))
                ],
            )
        )
    result.critical_path = list(path.path)
    result.critical_path_ms = sum(s.duration_ms for s in result.steps if s.on_critical_path)
    if result.duration_ms is None:
        result.duration_ms = (path.run_end_us - start) / 1000.0
    return result
