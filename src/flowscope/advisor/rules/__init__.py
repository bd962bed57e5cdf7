"""Every advisor rule, in the order they run (docs/advisor.md lists them)."""

from __future__ import annotations

import logging

from flowscope.advisor.evidence import Evidence
from flowscope.advisor.rules.base import CATEGORIES, SEVERITIES, Finding, Impact, Rule
from flowscope.advisor.rules.best_practices import (
    NondeterministicBranchDecision,
    NoRetryOrErrorHandling,
    SequentialIteration,
)
from flowscope.advisor.rules.cost import (
    ExpensiveModelForShortTask,
    PromptCostDominates,
    UncachedRepeatedInputs,
)
from flowscope.advisor.rules.parallelization import IndependentSequentialNodes
from flowscope.advisor.rules.performance import (
    DominantCriticalPathNode,
    HighTailLatency,
    OutputLengthDrivesLatency,
)
from flowscope.advisor.rules.reliability import (
    FailuresConcentratedInTime,
    HighErrorRate,
    RetriesConsumeTime,
)
from flowscope.advisor.rules.scalability import RisingLatencyOrCost, TokensPerRunGrowing

__all__ = ["CATEGORIES", "RULES", "SEVERITIES", "Finding", "Impact", "Rule", "evaluate"]

log = logging.getLogger("flowscope.advisor")

RULES: tuple[type[Rule], ...] = (
    DominantCriticalPathNode,
    HighTailLatency,
    OutputLengthDrivesLatency,
    UncachedRepeatedInputs,
    ExpensiveModelForShortTask,
    PromptCostDominates,
    HighErrorRate,
    RetriesConsumeTime,
    FailuresConcentratedInTime,
    RisingLatencyOrCost,
    TokensPerRunGrowing,
    NondeterministicBranchDecision,
    NoRetryOrErrorHandling,
    SequentialIteration,
    IndependentSequentialNodes,
)


def evaluate(evidence: Evidence) -> tuple[list[Finding], list[str]]:
    """Every rule's findings, and the ids of rules that raised (logged; the others still
    speak: one broken rule must not silence the advisor)."""
    findings: list[Finding] = []
    failed: list[str] = []
    for rule in RULES:
        try:
            findings.extend(rule().evaluate(evidence))
        except Exception:
            log.exception("advisor rule %s failed", rule.id)
            failed.append(rule.id)
    return findings, failed
