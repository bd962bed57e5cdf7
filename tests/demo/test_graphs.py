"""The demo workflows' graphs: the catalogue's DAGs with Dify configs, and the facts planted
in them for the advisor."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from flowscope.catalog import read_workflow_pk
from flowscope.demo.generator import generate_runs
from flowscope.demo.graphs import demo_graph
from flowscope.demo.seed import seed_demo
from flowscope.demo.workflows import (
    FAILING_NODE,
    INDEPENDENT_SEQUENTIAL,
    NONDETERMINISTIC_BRANCH,
    DemoWorkflow,
    demo_workflows,
)
from flowscope.graphs.model import BRANCH_TYPES, START_TYPES, WorkflowGraph
from flowscope.graphs.store import read_graph
from flowscope.store.engine import read_transaction
from flowscope.store.tables import Tenant, WorkflowGraphRow

END = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
WORKFLOWS = {w.workflow_id: w for w in demo_workflows()}
PLANTED_EDGE = (INDEPENDENT_SEQUENTIAL.first, INDEPENDENT_SEQUENTIAL.second)

Run = dict[str, Any]


@pytest.fixture(scope="module")
def runs() -> list[Run]:
    return list(generate_runs(runs=3000, seed=42, end=END, days=10))


def graphs() -> list[tuple[DemoWorkflow, WorkflowGraph]]:
    return [(w, demo_graph(w)) for w in demo_workflows()]


def ancestors(graph: WorkflowGraph, node_id: str) -> set[str]:
    found: set[str] = set()
    stack = graph.predecessors(node_id)
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack.extend(graph.predecessors(current))
    return found


def temperature(graph: WorkflowGraph, node_id: str) -> float:
    return graph.nodes[node_id].config["model"]["completion_params"]["temperature"]  # type: ignore[no-any-return]


# The catalogue, drawn


def test_every_graph_has_the_catalogue_nodes() -> None:
    for workflow, graph in graphs():
        expected = {
            n.node_id: (n.node_type, n.title, parent)
            for top in workflow.nodes
            for n, parent in ((top, None), *((c, top.node_id) for c in top.children))
        }
        found = {n.id: (n.type, n.title, n.parent_id) for n in graph.nodes.values()}
        assert found == expected, workflow.workflow_id
        assert all(n.config_known and n.config["type"] == n.type for n in graph.nodes.values())


def test_drawn_edges_are_the_catalogue_edges_and_the_iteration_chain() -> None:
    for workflow, graph in graphs():
        top = set(graph.top_level())
        drawn = [(e.source, e.target) for e in graph.edges if e.source in top]
        assert drawn == list(workflow.edges), workflow.workflow_id
        for container in (n for n in workflow.nodes if n.children):
            ids = [c.node_id for c in container.children]
            inner = [(e.source, e.target) for e in graph.edges if e.source not in top]
            assert inner == list(pairwise(ids))
    meeting = demo_graph(WORKFLOWS[INDEPENDENT_SEQUENTIAL.workflow_id])
    assert meeting.predecessors("talking_points") == ["questions"]
    assert "talking_points" not in meeting.successors("briefing")


def test_if_else_edges_leave_by_true_then_false() -> None:
    checked = 0
    for workflow, graph in graphs():
        for edge in graph.edges:
            source = workflow.node(edge.source)
            if source.node_type != "if-else":
                assert edge.source_handle is None
                continue
            first, second = (target for target, _ in source.branches)
            assert edge.source_handle == {first: "true", second: "false"}[edge.target]
            checked += 1
    assert checked == 8


def test_graphs_survive_their_json_form() -> None:
    from flowscope.graphs.neutral import parse_json_graph

    for _, graph in graphs():
        assert parse_json_graph(graph.to_json()) == graph


# Data dependencies


def test_every_drawn_edge_is_a_data_dependency_except_the_planted_one() -> None:
    for workflow, graph in graphs():
        independent = [(e.source, e.target) for e in graph.independent_edges()]
        planted = workflow.workflow_id == INDEPENDENT_SEQUENTIAL.workflow_id
        assert independent == ([PLANTED_EDGE] if planted else []), workflow.workflow_id
        for source, target in workflow.edges:
            if graph.nodes[source].type in START_TYPES or (source, target) == PLANTED_EDGE:
                continue
            assert graph.depends_on(target, source), (workflow.workflow_id, source, target)


def test_nodes_read_only_nodes_drawn_before_them() -> None:
    for workflow, graph in graphs():
        for node in graph.nodes.values():
            reads = graph.reads[node.id]
            if node.parent_id is None:
                assert reads <= ancestors(graph, node.id), (workflow.workflow_id, node.id)
            else:
                before = ancestors(graph, node.id) | {node.parent_id}
                assert reads <= before, (workflow.workflow_id, node.id)
        # Every node but the start reads something (a chatflow's first nodes read sys.query).
        readers = {n for n, reads in graph.reads.items() if reads}
        unread = set(graph.nodes) - readers - {"start"}
        assert all(graph.predecessors(n) == ["start"] for n in unread), unread


def test_the_planted_independent_pair() -> None:
    graph = demo_graph(WORKFLOWS[INDEPENDENT_SEQUENTIAL.workflow_id])
    first, second = PLANTED_EDGE
    assert not graph.depends_on(second, first)
    assert graph.reads[second] == {"briefing", "merge_sources"}
    assert graph.depends_on("bundle", first) and graph.depends_on("bundle", second)
    assert graph.reads["bundle"] == {"talking_points", "questions", "agenda"}
    assert graph.nodes[first].type == graph.nodes[second].type == "llm"


def test_qualify_decides_its_branch_at_temperature_above_zero() -> None:
    graph = demo_graph(WORKFLOWS[NONDETERMINISTIC_BRANCH.workflow_id])
    node = NONDETERMINISTIC_BRANCH.node_id
    assert graph.readers(node) == ["is_qualified"]
    assert temperature(graph, node) == 0.7
    (case,) = graph.nodes["is_qualified"].config["cases"]
    assert [c["variable_selector"] for c in case["conditions"]] == [[node, "text"]]
    assert graph.reads["write_email"] == graph.reads["reject_note"] == {"merge_profile"}


def test_no_other_llm_decides_a_branch_at_temperature_above_zero() -> None:
    deciders = []
    for workflow, graph in graphs():
        for node in graph.nodes.values():
            readers = graph.readers(node.id)
            if node.type != "llm" or not readers or temperature(graph, node.id) == 0:
                continue
            if all(graph.nodes[r].type in BRANCH_TYPES for r in readers):
                deciders.append((workflow.workflow_id, node.id))
    assert deciders == [NONDETERMINISTIC_BRANCH[1:]]
    triage = demo_graph(WORKFLOWS["ticket-triage"])
    assert temperature(triage, "categorize") == temperature(triage, "sentiment") == 0


# Retries and error handling


def test_retry_and_error_settings_follow_the_simulation() -> None:
    unhandled = []
    for workflow, graph in graphs():
        for node in graph.nodes.values():
            demo = workflow.node(node.id)
            retry = node.config.get("retry_config")
            assert (retry is not None) == (demo.retry_rate > 0), node.id
            if retry is not None:
                assert retry == {"retry_enabled": True, "max_retries": 2, "retry_interval": 1000}
            strategy = node.config.get("error_strategy")
            assert strategy == ("default-value" if demo.exception_rate > 0 else None), node.id
            if node.type in ("http-request", "tool") and retry is None and strategy is None:
                unhandled.append((workflow.app_id, workflow.workflow_id, node.id))
    assert unhandled == [FAILING_NODE]


def test_the_failing_node_fails_often_and_alone(runs: list[Run]) -> None:
    executions: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for run in runs:
        for node in run["node_executions"]:
            key = f"{run['workflow_id']}/{node['node_id']}"
            if node["status"] == "stopped":
                continue
            executions[key] += 1
            failed[key] += node["status"] in ("failed", "exception")
    rates = {k: failed[k] / n for k, n in executions.items() if n >= 200}
    planted = f"{FAILING_NODE.workflow_id}/{FAILING_NODE.node_id}"
    assert 0.11 <= rates[planted] <= 0.19
    # Nothing else reaches the advisor's error-rate threshold (5%).
    assert max(rate for k, rate in rates.items() if k != planted) < 0.05
    social = [
        n
        for r in runs
        for n in r["node_executions"]
        if n["node_id"] == FAILING_NODE.node_id and n["status"] == "failed"
    ]
    assert social and all(n["retry_count"] == 0 for n in social)


def test_the_planted_pair_runs_in_a_row_long_enough_to_matter(runs: list[Run]) -> None:
    first, second = PLANTED_EDGE
    waits, lengths = [], []
    for run in runs:
        if run["workflow_id"] != INDEPENDENT_SEQUENTIAL.workflow_id or run["status"] != "succeeded":
            continue
        done = {n["node_id"]: n for n in run["node_executions"]}
        assert done[second]["started_at"] >= done[first]["finished_at"]
        # Side by side, the second would start when the briefing ends.
        waits.append((done[second]["started_at"] - done["briefing"]["finished_at"]).total_seconds())
        lengths.append(run["elapsed_ms"])
    assert len(waits) > 100
    # The advisor suggests savings of 200 ms or 10% of the median run.
    assert statistics.median(waits) * 1000 >= max(200.0, 0.05 * statistics.median(lengths))


# Registration


def test_seed_registers_every_graph_for_every_version(engine: Engine) -> None:
    seed_demo(engine, runs=20, end=END)
    seed_demo(engine, runs=0, end=END)  # again: replaced, not duplicated
    with read_transaction(engine) as conn:
        assert conn.execute(select(func.count()).select_from(WorkflowGraphRow)).scalar() == 6
        tenant_id = conn.execute(select(Tenant.id).where(Tenant.name == "demo")).scalar_one()
        for workflow in demo_workflows():
            pk = read_workflow_pk(conn, tenant_id, workflow.app_id, workflow.workflow_id)
            assert pk is not None
            found = read_graph(conn, pk, "v2")
            assert found is not None
            graph, version, _ = found
            assert version == ""
            assert graph == demo_graph(workflow)
