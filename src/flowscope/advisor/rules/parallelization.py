"""Parallelization: nodes drawn one after another that do not need each other."""

from __future__ import annotations

from collections.abc import Iterable

from flowscope.advisor.evidence import Evidence, NodeStats
from flowscope.advisor.rules.base import Finding, Impact, Rule, enough, name_of, significant_saving
from flowscope.advisor.simulate import parallel_savings


class IndependentSequentialNodes(Rule):
    """Nodes run one after the other, but the later reads nothing the earlier produced.

    For each top-level node B, takes every drawn edge A -> B where A is neither a start nor
    a branch decision and B does not need A (no value selector or template of B reads A, not
    even through other nodes). When several such A are drawn before B side by side (a
    symmetric pair, or more), they are one finding naming them all: B waiting for one of
    them still waits for the others. Replays the sampled runs with B waiting for their own
    predecessors instead (B beside them, whatever followed B waiting for all of them), and
    fires when the median saving is at least `min_saving_ms` or `min_saving_share` of the
    median run. Needs the graph: drawn edges alone cannot tell data from habit.
    """

    id = "independent-sequential-nodes"
    category = "parallelization"

    def evaluate(self, evidence: Evidence) -> list[Finding]:
        graph = evidence.graph
        if graph is None:
            return []
        needs = graph.needs()
        before: dict[str, list[str]] = {}  # B -> the A drawn before it that it does not need
        for edge in graph.independent_edges():
            before.setdefault(edge.target, []).append(edge.source)
        found = []
        for second, sources in before.items():
            stats_b = evidence.nodes.get(second)
            firsts = [a for a in sources if _enough(evidence.nodes.get(a), evidence)]
            if stats_b is None or not enough(stats_b, evidence) or not firsts:
                continue
            savings = parallel_savings(evidence.sample, needs, second, *firsts)
            if savings.runs < evidence.thresholds.min_executions:
                continue
            if not significant_saving(savings.median_ms, evidence):
                continue
            stats_a = [evidence.nodes[a] for a in firsts]
            names_a = _and(name_of(s) for s in stats_a)
            preds = [p for a in firsts for p in graph.predecessors(a) if p not in firsts]
            instead_of = ", ".join(dict.fromkeys(preds)) or "the start"
            their = "its" if len(firsts) == 1 else "their"
            median_run = evidence.sample_median_run_ms() or 0.0
            found.append(
                self.finding(
                    evidence,
                    title=f"{name_of(stats_b)} could run beside {names_a}",
                    description=(
                        f"{name_of(stats_b)} waits for {names_a}, but reads none of {their} "
                        f"outputs. Run side by side, the median run would be "
                        f"{savings.median_ms:.0f} ms shorter "
                        f"({savings.median_ms / median_run:.0%} of {median_run:.0f} ms)."
                        if median_run
                        else f"{name_of(stats_b)} waits for {names_a} without reading "
                        f"{their} outputs."
                    ),
                    node_ids=[*firsts, second],
                    figures={
                        "median_saving_ms_per_run": savings.median_ms,
                        "mean_saving_ms_per_run": savings.mean_ms,
                        "median_run_ms": median_run,
                        "sampled_runs": savings.runs,
                        "runs_beside": firsts,
                        "reads_of_second": sorted(graph.reads.get(second, ())),
                    },
                    sample_size=savings.runs,
                    impact=Impact(latency_ms_per_run=savings.median_ms),
                    confidence=min(1.0, savings.runs / 100),
                    steps=(
                        f"Connect {second} to {instead_of} instead of to {_and(firsts)}.",
                        f"Connect what follows {second} to {_and(firsts)} as well, so it "
                        "still waits for " + ("both." if len(firsts) == 1 else "all of them."),
                    ),
                )
            )
        return found


def _enough(stats: NodeStats | None, evidence: Evidence) -> bool:
    return stats is not None and enough(stats, evidence)


def _and(names: Iterable[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(names)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
