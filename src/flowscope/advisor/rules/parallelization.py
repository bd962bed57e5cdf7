"""Parallelization: nodes drawn one after another that do not need each other."""

from __future__ import annotations

from flowscope.advisor.evidence import Evidence
from flowscope.advisor.rules.base import Finding, Impact, Rule, enough, name_of, significant_saving
from flowscope.advisor.simulate import parallel_savings


class IndependentSequentialNodes(Rule):
    """Two nodes run one after the other, but the second reads nothing the first produced.

    For each drawn edge A -> B between top-level nodes where A is neither a start nor a
    branch decision and B does not need A (no value selector or template of B reads A, not
    even through other nodes), replays the sampled runs with B waiting for A's own
    predecessors instead (the two side by side, whatever followed B waiting for both), and
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
        found = []
        for edge in graph.independent_edges():
            first, second = edge.source, edge.target
            stats_a, stats_b = evidence.nodes.get(first), evidence.nodes.get(second)
            if stats_a is None or stats_b is None:
                continue
            if not enough(stats_a, evidence) or not enough(stats_b, evidence):
                continue
            savings = parallel_savings(evidence.sample, needs, second, first)
            if savings.runs < evidence.thresholds.min_executions:
                continue
            if not significant_saving(savings.median_ms, evidence):
                continue
            before = ", ".join(graph.predecessors(first)) or "the start"
            median_run = evidence.sample_median_run_ms() or 0.0
            found.append(
                self.finding(
                    evidence,
                    title=f"{name_of(stats_b)} could run beside {name_of(stats_a)}",
                    description=(
                        f"{name_of(stats_b)} waits for {name_of(stats_a)}, but reads none of "
                        f"its outputs. Run side by side, the median run would be "
                        f"{savings.median_ms:.0f} ms shorter "
                        f"({savings.median_ms / median_run:.0%} of {median_run:.0f} ms)."
                        if median_run
                        else f"{name_of(stats_b)} waits for {name_of(stats_a)} without "
                        "reading its outputs."
                    ),
                    node_ids=[first, second],
                    figures={
                        "median_saving_ms_per_run": savings.median_ms,
                        "mean_saving_ms_per_run": savings.mean_ms,
                        "median_run_ms": median_run,
                        "sampled_runs": savings.runs,
                        "reads_of_second": sorted(graph.reads.get(second, ())),
                    },
                    sample_size=savings.runs,
                    impact=Impact(latency_ms_per_run=savings.median_ms),
                    confidence=min(1.0, savings.runs / 100),
                    steps=(
                        f"Connect {second} to {before} instead of to {first}.",
                        f"Connect what follows {second} to {first} as well, so it still waits "
                        "for both.",
                    ),
                )
            )
        return found
