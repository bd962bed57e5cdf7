"""One run's critical path, node by node, with each node's slack (from its raw rows)."""

from __future__ import annotations

from sqlalchemy import Connection

from flowscope.analytics.run_schedule import Execution, RunSchedule
from flowscope.runs.read import read_run
from flowscope.schemas.performance import PathChild, PathStep, RunCriticalPath
from flowscope.schemas.runs import NodeExecutionPublic, RunPublic
from flowscope.store.rows import on_the_path
from flowscope.timeutil import to_us


def read_critical_path(conn: Connection, tenant_id: int, run_id: str) -> RunCriticalPath | None:
    """None when the tenant has no such run."""
    run = read_run(conn, tenant_id, run_id)
    return None if run is None else run_critical_path(run)


def run_critical_path(run: RunPublic) -> RunCriticalPath:
    """The critical path of a run already read (with its node executions), through its
    containers: the path steps into an iteration, loop, chain or agent and follows the
    children that held it up. Unfinished node executions are left out of the path."""
    run_start = to_us(run.started_at)
    run_end = None if run.finished_at is None else to_us(run.finished_at)
    finished = [
        Execution(
            n.id, n.node_id, to_us(n.started_at), to_us(end), n.predecessor_node_id, n.parent_id
        )
        for n in run.node_executions
        if on_the_path(n.status, end := n.finished_at) and end is not None
    ]
    result = RunCriticalPath(
        run_id=run.id,
        status=run.status,
        duration_ms=run.elapsed_ms,
        critical_path=[],
        critical_path_ms=0.0,
        steps=[],
    )
    if not finished:
        return result
    schedule = RunSchedule(finished, run_start_us=run_start, run_end_us=run_end)
    path = schedule.critical_path()
    by_id = {n.id: n for n in run.node_executions}
    start = schedule.top.run_start_us
    placed: dict[str, PathChild] = {}
    tops: dict[str, PathStep] = {}
    for item in path.steps:
        step, node = item.step, by_id[item.step.id]
        if item.parent_id is None:
            tops[step.id] = PathStep(
                id=step.id,
                node_id=step.node_id,
                node_type=node.node_type,
                title=node.title,
                status=node.status,
                start_offset_ms=(step.start_us - start) / 1000.0,
                duration_ms=(step.end_us - step.start_us) / 1000.0,
                slack_ms=step.slack_us / 1000.0,
                on_critical_path=step.on_critical_path,
            )
            result.steps.append(tops[step.id])
        else:
            placed[step.id] = _child(node, start, step.on_critical_path, step.slack_us / 1000.0)
    # Every descendant sits under its top-level container, in start order, finished or not.
    children: dict[str, list[NodeExecutionPublic]] = {}
    for n in sorted(run.node_executions, key=lambda n: (n.started_at, n.id)):
        if n.parent_id is not None:
            children.setdefault(n.parent_id, []).append(n)
    for top_id, top in tops.items():
        top.children = [
            placed.get(c.id) or _child(c, start, False, None)
            for c in _descendants(top_id, children)
        ]
    result.critical_path = list(path.path)
    result.critical_path_ms = sum(s.duration_ms for s in result.steps if s.on_critical_path)
    if result.duration_ms is None:
        result.duration_ms = (path.run_end_us - start) / 1000.0
    return result


def _child(
    node: NodeExecutionPublic, start_us: int, critical: bool, slack_ms: float | None
) -> PathChild:
    return PathChild(
        id=node.id,
        node_id=node.node_id,
        node_type=node.node_type,
        status=node.status,
        parent_id=node.parent_id,
        start_offset_ms=(to_us(node.started_at) - start_us) / 1000.0,
        duration_ms=node.elapsed_ms,
        on_critical_path=critical,
        slack_ms=slack_ms,
    )


def _descendants(
    container_id: str, children: dict[str, list[NodeExecutionPublic]]
) -> list[NodeExecutionPublic]:
    """The container's children (lists in start order), each followed by its own."""
    out: list[NodeExecutionPublic] = []
    seen = {container_id}
    stack = list(reversed(children.get(container_id, ())))
    while stack:
        node = stack.pop()
        if node.id in seen:  # a malformed parent cycle: each execution once
            continue
        seen.add(node.id)
        out.append(node)
        stack.extend(reversed(children.get(node.id, ())))
    return out
