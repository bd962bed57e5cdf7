"""One recommendation per node and problem: the most specific finding wins and takes in the
others' evidence (table-driven), and what that does to stored recommendations."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from flowscope import catalog
from flowscope.advisor.evidence import Evidence
from flowscope.advisor.lifecycle import (
    read_recommendation,
    read_recommendations,
    store_findings,
)
from flowscope.advisor.merge import merge_findings
from flowscope.advisor.rules import RULES, Finding, Impact, evaluate
from flowscope.performance.window import make_window
from flowscope.store.engine import write_transaction
from flowscope.tenancy.keys import ensure_tenant
from tests.advisor.builders import chain_run, evidence_of, execution, graph_of, with_stats

END = datetime(2026, 3, 2, tzinfo=UTC)
SEVERITY_OF = {0.5: "critical", 0.2: "high", 0.05: "medium", 0.01: "low"}


def found(rule_id: str, *node_ids: str, score: float = 0.05, **figures: Any) -> Finding:
    """A finding as `rule_id` would make it (its category from the registry)."""
    (rule,) = [r for r in RULES if r.id == rule_id]
    return Finding(
        rule_id=rule_id,
        category=rule.category,
        severity=SEVERITY_OF[score],
        title=f"{rule_id} on {', '.join(node_ids)}",
        description=f"What {rule_id} saw.",
        node_ids=node_ids,
        figures=figures or {"figure": score},
        sample_size=100,
        impact=Impact(latency_ms_per_run=score * 1000),
        impact_score=score,
        action_steps=(f"Act on {rule_id}.",),
        confidence=0.9,
    )


DOMINANT = found("dominant-critical-path-node", "loop", score=0.5, critical_path_share=0.7)
SEQUENTIAL = found("sequential-iteration", "loop", score=0.2, median_items=4)
OUTPUT_LENGTH = found("output-length-drives-latency", "loop", score=0.05)
DOMINANT_ELSEWHERE = found("dominant-critical-path-node", "answer", score=0.2)
ERRORS = found("high-error-rate", "api", score=0.5, error_rate=0.14, top_errors=["HTTP 503"])
NO_RETRY = found("no-retry-or-error-handling", "api", score=0.2, error_rate=0.14)
BURSTS = found("failures-concentrated-in-time", "api", score=0.05, share_in_worst_hours=0.8)
TAIL = found("high-tail-latency", "loop", score=0.05)


def folded_into(kept: Finding, *others: Finding) -> Finding:
    """The truth: `kept` with each of `others` folded in, built by hand."""
    worst = min(
        (kept, *others), key=lambda f: ("critical", "high", "medium", "low").index(f.severity)
    )
    return replace(
        kept,
        severity=worst.severity,
        description=kept.description + "".join(f" Also: {o.title}." for o in others),
        figures={**kept.figures, **{o.rule_id: o.figures for o in others}},
        folded=tuple(o.fingerprint for o in others),
    )


@dataclass(frozen=True)
class Case:
    name: str
    findings: list[Finding]
    expected: list[Finding]


CASES = [
    Case("a dominant node folded into the sequential iteration that explains it",
         [DOMINANT, SEQUENTIAL], [folded_into(SEQUENTIAL, DOMINANT)]),
    Case("order does not matter", [SEQUENTIAL, DOMINANT], [folded_into(SEQUENTIAL, DOMINANT)]),
    Case("a dominant node elsewhere stays", [DOMINANT_ELSEWHERE, SEQUENTIAL],
         [DOMINANT_ELSEWHERE, SEQUENTIAL]),
    Case("high error rate folded into the missing retries, keeping the worse severity",
         [ERRORS, NO_RETRY], [folded_into(NO_RETRY, ERRORS)]),
    Case("two specific findings: the general one goes to the larger impact, the other stays",
         [ERRORS, BURSTS, NO_RETRY], [BURSTS, folded_into(NO_RETRY, ERRORS)]),
    Case("same impact: the rule that runs first", [DOMINANT, OUTPUT_LENGTH,
         replace(SEQUENTIAL, impact_score=0.05)],
         [folded_into(OUTPUT_LENGTH, DOMINANT), replace(SEQUENTIAL, impact_score=0.05)]),
    Case("a different problem on the same node stays apart", [TAIL, DOMINANT, SEQUENTIAL],
         [TAIL, folded_into(SEQUENTIAL, DOMINANT)]),
    Case("a general finding alone stays", [DOMINANT, ERRORS], [DOMINANT, ERRORS]),
    Case("nothing", [], []),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_merge_findings(case: Case) -> None:
    merged = merge_findings(case.findings)
    assert merged == case.expected
    # One recommendation per node and problem: no fingerprint twice, none lost unaccounted.
    kept = {f.fingerprint for f in merged}
    folded = {fp for f in merged for fp in f.folded}
    assert kept | folded == {f.fingerprint for f in case.findings} and not kept & folded


def test_every_refinement_names_another_rule() -> None:
    ids = {rule.id for rule in RULES}
    for rule in RULES:
        assert set(rule.refines) <= ids - {rule.id}, rule.id
        for general in rule.refines:
            (other,) = [r for r in RULES if r.id == general]
            assert not other.refines, "a refined rule refines nothing itself"


def _iteration_dominating() -> Evidence:
    """A sequential iteration of four 300 ms items holding the run (and the only node worth
    speeding up besides a 400 ms LLM)."""
    graph = graph_of(
        [("start", "start", {}), ("loop", "iteration", {"iterator_selector": ["start", "x"]}),
         ("fetch", "http-request", {"url": "{{#loop.item#}}", "retry_config":
                                    {"retry_enabled": True}}),
         ("answer", "llm", {"prompt_template": [{"role": "user", "text": "{{#loop.output#}}"}]}),
         ("end", "end", {"outputs": [{"value_selector": ["answer", "text"]}]})],
        [("start", "loop"), ("loop", "answer"), ("answer", "end")],
        parents={"fetch": "loop"},
    )  # fmt: skip
    runs = []
    for i in range(50):
        run = chain_run(i, [("start", 5), ("loop", 1200.0), ("answer", 400.0), ("end", 5)])
        container = run.executions[1]
        for k in range(4):
            at = container.start_us / 1000 + k * 300
            run.executions.append(
                execution(run.run_id, "fetch", at, at + 300, parent_id=container.id, index=k)
            )
        runs.append(run)
    ev = evidence_of(runs, graph=graph)
    for node_id, ms in (("loop", 1200.0), ("answer", 400.0)):
        with_stats(ev, node_id, critical_path_share=ms / 1610, on_critical_path_rate=1.0,
                   critical_path_ms_per_run=ms, halving_saving_ms_per_run=ms / 2)  # fmt: skip
    return ev


def test_rules_then_merge_on_evidence() -> None:
    findings, failed = evaluate(_iteration_dominating())
    assert failed == []
    assert sorted(f.rule_id for f in findings) == [
        "dominant-critical-path-node", "sequential-iteration"
    ]  # fmt: skip
    (merged,) = merge_findings(findings)
    assert merged.rule_id == "sequential-iteration" and merged.node_ids == ("loop",)
    # 4 items of 300 ms at 10 at once: the run is 900 ms shorter; halving it saved 600 ms.
    assert merged.impact.latency_ms_per_run == pytest.approx(900.0)
    assert merged.figures["dominant-critical-path-node"]["halving_saving_ms_per_run"] == 600.0
    assert "holds 75% of the critical path" in merged.description


def test_a_folded_recommendation_is_resolved_as_merged(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        tenant = ensure_tenant(conn, "acme")
        pk = catalog.ensure_workflows(conn, tenant, [("app", "wf")], 1)[("app", "wf")]
        window = make_window(7, None, END, default_days=7).public().model_dump(mode="json")
        settled = {rule.id for rule in RULES}
        first = store_findings(
            conn, pk, [DOMINANT], window, 1_000, actor="t", settled_rules=settled
        )
        assert first.created == 1
        merged = merge_findings([DOMINANT, SEQUENTIAL])
        second = store_findings(conn, pk, merged, window, 2_000, actor="t", settled_rules=settled)
        assert (second.created, second.resolved) == (1, 1)
        everything = read_recommendations(conn, pk, statuses=("active", "resolved"))
        status = {r.rule_id: (r.status, r.id) for r in everything}
        assert status["sequential-iteration"][0] == "active"
        old = read_recommendation(conn, pk, status["dominant-critical-path-node"][1])
        assert old is not None and old.status == "resolved"
        assert old.history[-1].event == "resolved"
        assert old.history[-1].detail == "merged into sequential-iteration on the same node"
