"""What a rule is, what it finds, and how a finding's figures become its severity."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from flowscope.advisor.evidence import Evidence, NodeStats

CATEGORIES = (
    "performance",
    "cost",
    "reliability",
    "scalability",
    "best_practices",
    "parallelization",
)
SEVERITIES = ("critical", "high", "medium", "low")

# Severity from the impact score (docs/advisor.md): the share of a median run's time or of
# the cost per run the change would save, or four times the share of runs it would keep from
# failing (a failure costs a whole run, not a slice of it).
_SEVERITY_FLOORS = (("critical", 0.3), ("high", 0.1), ("medium", 0.03))
ERROR_WEIGHT = 4.0


@dataclass(frozen=True, slots=True)
class Impact:
    """What acting on a finding would change: run time saved (ms per run, median unless the
    rule says mean), money saved per 1,000 runs, and the share of runs kept from failing."""

    latency_ms_per_run: float | None = None
    cost_per_1k_runs: float | None = None
    error_rate: float | None = None

    def score(self, run_p50_ms: float | None, cost_per_run: float | None) -> float:
        parts = [0.0]
        if self.latency_ms_per_run and run_p50_ms:
            parts.append(self.latency_ms_per_run / run_p50_ms)
        if self.cost_per_1k_runs and cost_per_run:
            parts.append(self.cost_per_1k_runs / 1000.0 / cost_per_run)
        if self.error_rate:
            parts.append(self.error_rate * ERROR_WEIGHT)
        return max(parts)


def severity_of(score: float) -> str:
    for name, floor in _SEVERITY_FLOORS:
        if score >= floor:
            return name
    return "low"


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's conclusion, before it is stored as a recommendation."""

    rule_id: str
    category: str
    severity: str
    title: str
    description: str
    node_ids: tuple[str, ...]
    figures: dict[str, Any]
    sample_size: int
    impact: Impact
    impact_score: float
    action_steps: tuple[str, ...]
    confidence: float
    # Tells apart findings of one rule on the same nodes (e.g. the metric that regressed).
    subject: str = ""
    # Fingerprints of the more general findings on the same nodes folded into this one
    # (advisor.merge): their recommendations are resolved as merged, not as gone.
    folded: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        key = "|".join((self.rule_id, ",".join(sorted(self.node_ids)), self.subject))
        return hashlib.sha256(key.encode()).hexdigest()[:32]


class Rule:
    """A rule: `id`, `category`, a docstring that explains it, and `evaluate`."""

    id: ClassVar[str]
    category: ClassVar[str]
    steps: ClassVar[tuple[str, ...]] = ()
    refines: ClassVar[tuple[str, ...]] = ()
    """Ids of more general rules whose finding on the same nodes this rule's finding takes
    in: it names the same problem, and says why and what to do (advisor.merge)."""

    @classmethod
    def explanation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    def evaluate(self, evidence: Evidence) -> list[Finding]:
        raise NotImplementedError

    def finding(
        self,
        evidence: Evidence,
        *,
        title: str,
        description: str,
        node_ids: Sequence[str] = (),
        figures: dict[str, Any],
        sample_size: int,
        impact: Impact,
        confidence: float,
        steps: Sequence[str] | None = None,
        subject: str = "",
        severity: str | None = None,
    ) -> Finding:
        """A finding with its severity from its impact unless the rule gives one."""
        score = impact.score(evidence.run_p50_ms, evidence.cost_per_run)
        return Finding(
            rule_id=self.id,
            category=self.category,
            severity=severity or severity_of(score),
            title=title,
            description=description,
            node_ids=tuple(node_ids),
            figures=_rounded(figures),
            sample_size=sample_size,
            impact=Impact(**_rounded(asdict(impact))),
            impact_score=round(score, 6),
            action_steps=tuple(steps if steps is not None else self.steps),
            confidence=round(min(1.0, max(0.0, confidence)), 4),
            subject=subject,
        )


def name_of(node: NodeStats) -> str:
    """How a finding names a node: its title and id."""
    return f"{node.title} ({node.node_id})" if node.title else node.node_id


def enough(node: NodeStats, evidence: Evidence) -> bool:
    return node.executions >= evidence.thresholds.min_executions


def significant_saving(saving_ms: float, evidence: Evidence) -> bool:
    """A run-time saving worth suggesting: `min_saving_ms`, or `min_saving_share` of the
    median run."""
    t = evidence.thresholds
    median_run = evidence.sample_median_run_ms() or 0.0
    return saving_ms >= t.min_saving_ms or (
        median_run > 0 and saving_ms >= t.min_saving_share * median_run
    )


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6) + 0.0
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value
