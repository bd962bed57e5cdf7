"""The advisor on `flowscope demo` data: it finds the planted problems and nothing absurd."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from flowscope import catalog
from flowscope.advisor.generate import generate_recommendations
from flowscope.advisor.thresholds import Thresholds
from flowscope.demo.seed import seed_demo
from flowscope.demo.workflows import (
    FAILING_NODE,
    INDEPENDENT_SEQUENTIAL,
    NONDETERMINISTIC_BRANCH,
    REGRESSION,
    REPEATED_INPUTS,
    SLOW_OFF_CRITICAL_PATH,
    demo_workflows,
)
from flowscope.performance.window import make_window
from flowscope.runs.pricing import PriceBook
from flowscope.schemas.advisor import GenerateResult, RecommendationPublic
from flowscope.store import migrate
from flowscope.store.engine import make_engine, write_transaction
from flowscope.tenancy.keys import ensure_tenant
from flowscope.timeutil import now_us

END = datetime(2026, 3, 2, tzinfo=UTC)
Found = dict[tuple[str, str], GenerateResult]


def _generate(engine: Engine) -> Found:
    window = make_window(7, None, END, default_days=7)
    found: Found = {}
    with write_transaction(engine) as conn:
        tenant_id = ensure_tenant(conn, "demo")
        for workflow in demo_workflows():
            pk = catalog.read_workflow_pk(conn, tenant_id, workflow.app_id, workflow.workflow_id)
            assert pk is not None
            found[(workflow.app_id, workflow.workflow_id)] = generate_recommendations(
                conn, pk, window, thresholds=Thresholds(), prices=PriceBook(),
                default_ttls={}, actor="test", now_us=now_us(),
            )  # fmt: skip
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Found]]:
    """The default demo (2000 runs, seed 42) and the advisor's findings over its last week."""
    path: Path = tmp_path_factory.mktemp("advisor-demo") / "demo.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    seed_demo(engine, runs=2000, end=END)
    yield engine, _generate(engine)
    engine.dispose()


def recs(found: Found, app_id: str, workflow_id: str) -> list[RecommendationPublic]:
    result = found[(app_id, workflow_id)]
    assert result.graph and result.failed_rules == []
    return result.data


def with_rule(found: Found, rule_id: str) -> list[tuple[str, RecommendationPublic]]:
    return [
        (workflow_id, rec)
        for (_, workflow_id), result in found.items()
        for rec in result.data
        if rec.rule_id == rule_id
    ]


def test_finds_the_regression(demo: tuple[Engine, Found]) -> None:
    found = recs(demo[1], REGRESSION.app_id, REGRESSION.workflow_id)
    (rec,) = [r for r in found if r.rule_id == "rising-latency-or-cost"]
    assert rec.node_ids == [REGRESSION.node_id]
    starts = datetime.fromisoformat(rec.evidence.figures["starts_at"].replace("Z", "+00:00"))
    planted = END.timestamp() - REGRESSION.starts_days_before_end * 86_400
    assert abs(starts.timestamp() - planted) <= 6 * 3600


def test_finds_the_repeated_inputs(demo: tuple[Engine, Found]) -> None:
    found = recs(demo[1], REPEATED_INPUTS.app_id, REPEATED_INPUTS.workflow_id)
    (rec,) = [r for r in found if r.rule_id == "uncached-repeated-inputs"]
    assert rec.node_ids == [REPEATED_INPUTS.node_id]
    assert rec.evidence.figures["would_hit_rate"] > 0.3
    assert rec.evidence.figures["actual_hit_rate"] == 0
    assert (rec.estimated_impact.cost_per_1k_runs or 0) > 0


def test_finds_the_failing_node(demo: tuple[Engine, Found]) -> None:
    found = recs(demo[1], FAILING_NODE.app_id, FAILING_NODE.workflow_id)
    # One recommendation for the node's failures: the missing retries, with the high error
    # rate's figures folded in.
    (rec,) = [r for r in found if r.node_ids == [FAILING_NODE.node_id]]
    assert rec.rule_id == "no-retry-or-error-handling"
    folded = rec.evidence.figures["high-error-rate"]
    assert folded["error_rate"] == rec.evidence.figures["error_rate"] > 0.05
    # The only node that fails often: no other node anywhere is flagged for its error rate.
    flagged = [
        (workflow_id, r.node_ids)
        for (_, workflow_id), result in demo[1].items()
        for r in result.data
        if r.rule_id == "high-error-rate" or "high-error-rate" in r.evidence.figures
    ]
    assert flagged == [(FAILING_NODE.workflow_id, [FAILING_NODE.node_id])]


def test_finds_the_independent_sequential_nodes(demo: tuple[Engine, Found]) -> None:
    found = with_rule(demo[1], "independent-sequential-nodes")
    assert [(w, r.node_ids) for w, r in found] == [
        (INDEPENDENT_SEQUENTIAL.workflow_id,
         [INDEPENDENT_SEQUENTIAL.first, INDEPENDENT_SEQUENTIAL.second])
    ]  # fmt: skip
    saving = found[0][1].estimated_impact.latency_ms_per_run or 0
    assert 1000 < saving < 3000  # `questions` takes ~1.8 s


def test_finds_the_graph_problems(demo: tuple[Engine, Found]) -> None:
    assert [(w, r.node_ids) for w, r in with_rule(demo[1], "nondeterministic-branch-decision")] == [
        (NONDETERMINISTIC_BRANCH.workflow_id, [NONDETERMINISTIC_BRANCH.node_id])
    ]
    assert [(w, r.node_ids) for w, r in with_rule(demo[1], "sequential-iteration")] == [
        ("deep-research", ["research_each"])
    ]


def test_nothing_absurd(demo: tuple[Engine, Found]) -> None:
    boring = {"start", "end", "answer"}
    for (_, workflow_id), result in demo[1].items():
        assert len(result.data) <= 10, (workflow_id, [r.title for r in result.data])
        for rec in result.data:
            assert not boring & set(rec.node_ids), rec.title
            impact = rec.estimated_impact
            assert impact.latency_ms_per_run is None or 0 < impact.latency_ms_per_run < 60_000
            assert impact.cost_per_1k_runs is None or impact.cost_per_1k_runs > 0
            assert impact.error_rate is None or 0 < impact.error_rate <= 1
            assert rec.evidence.sample_size >= Thresholds().min_executions
    # The slowest node has slack: it is never reported as holding runs back.
    slow = [
        rec.rule_id
        for w, rec in with_rule(demo[1], "dominant-critical-path-node")
        + with_rule(demo[1], "high-tail-latency")
        if rec.node_ids == [SLOW_OFF_CRITICAL_PATH.node_id]
    ]
    assert slow == []


def test_regenerating_changes_nothing(demo: tuple[Engine, Found]) -> None:
    engine, first = demo
    again = _generate(engine)
    for key, result in again.items():
        assert result.created == result.resolved == result.reopened == 0, key
        assert [r.id for r in result.data] == [r.id for r in first[key].data]
