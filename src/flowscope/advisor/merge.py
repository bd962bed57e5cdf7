"""One recommendation per node and problem: a general finding (a node holds the critical
path, a node fails often) is folded into a more specific finding on the same nodes that says
why and what to do (a sequential iteration, missing retries), its figures kept in the
specific one's evidence (docs/advisor.md, "One recommendation per node and problem").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from flowscope.advisor.rules import RULES, SEVERITIES, Finding, Rule


def merge_findings(
    findings: Sequence[Finding], rules: Sequence[type[Rule]] = RULES
) -> list[Finding]:
    """The findings with each general one folded into the most specific finding on the same
    nodes that refines it (the largest impact score, then the rule that runs first); the
    others keep their order."""
    refines = {rule.id: frozenset(rule.refines) for rule in rules}
    order = {rule.id: i for i, rule in enumerate(rules)}
    into: dict[int, int] = {}  # index of a general finding -> index of the one taking it in
    for i, general in enumerate(findings):
        if not general.node_ids:
            continue
        nodes = sorted(general.node_ids)
        specific = [
            j
            for j, f in enumerate(findings)
            if j != i
            and general.rule_id in refines.get(f.rule_id, ())
            and sorted(f.node_ids) == nodes
        ]
        if specific:
            into[i] = min(
                specific,
                key=lambda j: (-findings[j].impact_score, order.get(findings[j].rule_id, 0)),
            )
    taken: dict[int, list[Finding]] = {}
    for i, j in into.items():
        taken.setdefault(j, []).append(findings[i])
    return [
        _fold(f, taken.get(j, [])) if j in taken else f
        for j, f in enumerate(findings)
        if j not in into
    ]


def _fold(kept: Finding, general: list[Finding]) -> Finding:
    """`kept` with the general findings' figures, titles and severity taken in: merging never
    lowers a severity, and the impact stays the specific finding's (its steps' impact)."""
    worst = min((kept, *general), key=lambda f: SEVERITIES.index(f.severity))
    return replace(
        kept,
        severity=worst.severity,
        description=kept.description + "".join(f" Also: {g.title}." for g in general),
        figures={**kept.figures, **{g.rule_id: g.figures for g in general}},
        folded=kept.folded + tuple(fp for g in general for fp in (g.fingerprint, *g.folded)),
    )
