"""Evidence built by hand for rule tests: runs of a few nodes with chosen timings, and node
figures computed from them the way the rollups would."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from flowscope.advisor.evidence import Evidence, NodeStats, SampleExecution, SampleRun
from flowscope.advisor.thresholds import Thresholds
from flowscope.graphs.dify import parse_dify_dsl
from flowscope.graphs.model import GraphEdge, GraphNode, WorkflowGraph

MS = 1000
REAL_EXPORTS = Path(__file__).resolve().parent.parent / "graphs" / "fixtures" / "real"
"""Real Dify exports nobody here wrote (svcvit/Awesome-Dify-Workflow, MIT; README there)."""
HOUR_US = 3_600_000_000
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00Z


def execution(
    run: str, node_id: str, start_ms: float, end_ms: float, **fields: Any
) -> SampleExecution:
    base: dict[str, Any] = {
        "node_type": "llm",
        "status": "succeeded",
        "elapsed_ms": end_ms - start_ms,
    }
    base.update(fields)
    return SampleExecution(
        id=f"{run}:{node_id}:{start_ms}",
        node_id=node_id,
        start_us=round(start_ms * MS),
        end_us=round(end_ms * MS),
        **base,
    )


def chain_run(
    index: int,
    steps: Sequence[tuple[str, float]],
    *,
    start_ms: float | None = None,
    gap_ms: float = 1.0,
    fields: Callable[[int, str], dict[str, Any]] | None = None,
) -> SampleRun:
    """A run of `steps` (node id, duration ms) one after the other, each waiting for the one
    before (predecessor_node_id set), starting `index` minutes after T0."""
    run_id = f"r{index}"
    at = start_ms if start_ms is not None else T0 / MS + index * 60_000
    begin = at
    executions = []
    previous = None
    for node_id, duration in steps:
        extra = fields(index, node_id) if fields else {}
        executions.append(
            execution(run_id, node_id, at, at + duration, predecessor_node_id=previous, **extra)
        )
        previous = node_id
        at += duration + gap_ms
    return SampleRun(run_id, "succeeded", round(begin * MS), round((at - gap_ms) * MS), executions)


def stats_from(sample: Iterable[SampleRun]) -> dict[str, NodeStats]:
    """Node figures as the rollups would give them (exact percentiles)."""
    by_node: dict[str, list[SampleExecution]] = defaultdict(list)
    for run in sample:
        for e in run.executions:
            by_node[e.node_id].append(e)
    stats = {}
    for node_id, executions in by_node.items():
        times = np.array([e.elapsed_ms for e in executions if e.elapsed_ms is not None])
        stats[node_id] = NodeStats(
            node_id=node_id,
            node_type=executions[0].node_type,
            title=node_id.replace("_", " ").title(),
            executions=len(executions),
            failed=sum(e.status in ("failed", "exception") for e in executions),
            retries=sum(e.retry_count for e in executions),
            p50_ms=float(np.percentile(times, 50)) if len(times) else None,
            p95_ms=float(np.percentile(times, 95)) if len(times) else None,
            p99_ms=float(np.percentile(times, 99)) if len(times) else None,
            mean_ms=float(times.mean()) if len(times) else None,
            prompt_tokens=sum(e.prompt_tokens or 0 for e in executions),
            completion_tokens=sum(e.completion_tokens or 0 for e in executions),
            cost=sum(e.cost or 0.0 for e in executions),
            cache_lookups=sum(e.cache_hit for e in executions),
            cache_hits=sum(e.cache_hit for e in executions),
        )
    return stats


def evidence_of(
    sample: list[SampleRun],
    *,
    graph: WorkflowGraph | None = None,
    nodes: dict[str, NodeStats] | None = None,
    thresholds: Thresholds | None = None,
    **fields: Any,
) -> Evidence:
    durations = sorted(run.duration_ms for run in sample)
    costs = [sum(e.cost or 0.0 for e in run.executions) for run in sample]
    evidence = Evidence(
        window_start_us=T0,
        window_end_us=T0 + 7 * 24 * HOUR_US,
        thresholds=thresholds or Thresholds(),
        runs=len(sample),
        run_p50_ms=float(np.percentile(durations, 50)) if durations else None,
        cost_per_run=(sum(costs) / len(costs)) if costs and sum(costs) else None,
        nodes=nodes if nodes is not None else stats_from(sample),
        sample=sample,
        graph=graph,
    )
    for name, value in fields.items():
        setattr(evidence, name, value)
    return evidence


def graph_of(
    nodes: Sequence[tuple[str, str, dict[str, Any]]],
    edges: Sequence[tuple[str, str]],
    *,
    parents: dict[str, str] | None = None,
) -> WorkflowGraph:
    """A graph from (id, type, config) and (source, target) pairs."""
    return WorkflowGraph.build(
        [
            GraphNode(node_id, kind, node_id, config, (parents or {}).get(node_id))
            for node_id, kind, config in nodes
        ],
        [GraphEdge(s, t) for s, t in edges],
    )


def with_stats(evidence: Evidence, node_id: str, **changes: Any) -> Evidence:
    evidence.nodes[node_id] = replace(evidence.nodes[node_id], **changes)
    return evidence


def real_graph(name: str) -> WorkflowGraph:
    """One of the real exports, e.g. `real_graph("svcvit_runLLMCode")`."""
    return parse_dify_dsl((REAL_EXPORTS / f"{name}.yml").read_text(encoding="utf-8"))


def graph_chain(
    graph: WorkflowGraph,
    durations: dict[str, float],
    runs: int,
    *,
    fields: Callable[[int, str], dict[str, Any]] | None = None,
) -> list[SampleRun]:
    """Runs through the top-level nodes of a graph that is one chain (start to end), each
    node taking `durations[node id]` ms (5 ms when not given), typed as in the graph."""
    order = []
    node = next(n.id for n in graph.nodes.values() if n.type == "start")
    while True:
        order.append(node)
        after = graph.successors(node)
        if not after:
            break
        assert len(after) == 1, f"{node} branches: not a chain"
        node = after[0]

    def typed(i: int, node_id: str) -> dict[str, Any]:
        extra = {"node_type": graph.nodes[node_id].type}
        extra.update(fields(i, node_id) if fields else {})
        return extra

    steps = [(n, durations.get(n, 5.0)) for n in order]
    return [chain_run(i, steps, fields=typed) for i in range(runs)]
