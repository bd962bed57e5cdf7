"""Performance: what holds runs back."""

from __future__ import annotations

import functools

import numpy as np
from scipy import stats

from flowscope.advisor.evidence import Evidence, SampleExecution
from flowscope.advisor.rules.base import (
    Finding,
    Impact,
    Rule,
    enough,
    name_of,
    significant_saving,
)
from flowscope.advisor.simulate import replay_savings

MIN_TAIL_EXECUTIONS = 100
"""A p99 means little below a hundred executions."""


class DominantCriticalPathNode(Rule):
    """A single node holds a large share of the time runs spend on their critical path.

    Looks at the critical-path share of every node (its time on the path over all nodes'
    time on it) and fires when one holds at least `dominant_critical_path_share`. The
    impact is the mean saving per run if the node took half its time, each analysed run
    replayed through its dependencies at ingestion (not its duration halved: slack absorbs
    part of any speed-up); the evidence also gives a typical run's (the median). Quiet when
    that offers nothing to do: halving the node would not save a significant time per run,
    or no other node would (the node is then the whole run, as an LLM between start and end:
    its share says nothing).
    """

    id = "dominant-critical-path-node"
    category = "performance"

    def evaluate(self, evidence: Evidence) -> list[Finding]:
        found = []
        for node in evidence.nodes.values():
            share = node.critical_path_share
            if (
                not enough(node, evidence)
                or share < evidence.thresholds.dominant_critical_path_share
            ):
                continue
            typical = node.halving_saving_ms_per_run
            saving = node.halving_mean_saving_ms_per_run
            if saving is not None and not significant_saving(saving, evidence):
                continue  # halving it would not change runs enough to matter
            if not _worth_speeding_up_besides(node.node_id, evidence):
                continue  # the node is the run: nothing to choose between
            found.append(
                self.finding(
                    evidence,
                    title=f"{name_of(node)} holds {share:.0%} of the critical path",
                    description=(
                        f"Runs wait on {name_of(node)} for {node.critical_path_ms_per_run:.0f} ms "
                        f"on average, {share:.0%} of their critical-path time; it is on the "
                        f"critical path in {node.on_critical_path_rate:.0%} of runs. Halving its "
                        f"time would save {saving or 0:.0f} ms per run on average (a typical run: "
                        f"{typical or 0:.0f} ms)."
                    ),
                    node_ids=[node.node_id],
                    figures={
                        "critical_path_share": share,
                        "critical_path_ms_per_run": node.critical_path_ms_per_run,
                        "on_critical_path_rate": node.on_critical_path_rate,
                        "p50_ms": node.p50_ms,
                        "p95_ms": node.p95_ms,
                        "halving_saving_ms_per_run": typical,
                        "halving_mean_saving_ms_per_run": saving,
                    },
                    sample_size=node.executions,
                    impact=Impact(latency_ms_per_run=saving),
                    confidence=node.on_critical_path_rate,
                    steps=_speedups(node.node_type),
                )
            )
        return found


class HighTailLatency(Rule):
    """A node's slowest executions are far slower than its typical one (p99 over p50).

    Fires when p99 is at least `tail_ratio` times p50 over at least 100 executions. The
    impact is the mean run-time saving if no execution took longer than the node's p95 (what
    a timeout with a retry, or a hedged request, aims at), replayed through the sampled runs;
    a tail on a node with slack saves nothing and the rule stays quiet.
    """

    id = "high-tail-latency"
    category = "performance"

    def evaluate(self, evidence: Evidence) -> list[Finding]:
        found = []
        for node in evidence.nodes.values():
            if node.executions < max(MIN_TAIL_EXECUTIONS, evidence.thresholds.min_executions):
                continue
            if not node.p50_ms or not node.p99_ms or node.p95_ms is None:
                continue
            ratio = node.p99_ms / node.p50_ms
            if ratio < evidence.thresholds.tail_ratio:
                continue
            cap_us = round(node.p95_ms * 1000)
            savings = replay_savings(
                evidence.sample,
                evidence.needs(),
                functools.partial(_capped, node_id=node.node_id, cap_us=cap_us),
            )
            if evidence.sample and savings.mean_ms <= 0:
                continue
            found.append(
                self.finding(
                    evidence,
                    title=f"{name_of(node)} has a long tail: p99 is {ratio:.1f}x p50",
                    description=(
                        f"Half of {name_of(node)}'s executions take under {node.p50_ms:.0f} ms, "
                        f"but 1% take over {node.p99_ms:.0f} ms. Cutting executions off at the "
                        f"p95 ({node.p95_ms:.0f} ms) would shorten runs by "
                        f"{savings.mean_ms:.0f} ms on average."
                    ),
                    node_ids=[node.node_id],
                    figures={
                        "p50_ms": node.p50_ms,
                        "p95_ms": node.p95_ms,
                        "p99_ms": node.p99_ms,
                        "tail_ratio": ratio,
                        "mean_saving_ms_per_run": savings.mean_ms,
                        "sampled_runs": savings.runs,
                    },
                    sample_size=node.executions,
                    impact=Impact(latency_ms_per_run=savings.mean_ms or None),
                    confidence=min(1.0, node.executions / 1000),
                    steps=(
                        f"Set a timeout near the p95 ({node.p95_ms:.0f} ms) with one retry, or "
                        "send a second (hedged) request when the first is slower than the p95.",
                        "Find out what the slow executions have in common (inputs, time of day, "
                        "upstream region) from the runs list.",
                    ),
                )
            )
        return found


class OutputLengthDrivesLatency(Rule):
    """An LLM node's latency rises with the length of its output.

    Over the sampled executions, fires when the Spearman correlation of completion tokens and
    latency is at least `output_latency_correlation` and significant, and capping outputs at
    their 90th percentile (a max_tokens that cuts only the longest tenth) would save a
    significant run time. The time per output token is the Theil-Sen slope; the saving
    replays each sampled run with the node's longest outputs cut to that length.
    """

    id = "output-length-drives-latency"
    category = "performance"
    refines = ("dominant-critical-path-node",)

    def evaluate(self, evidence: Evidence) -> list[Finding]:
        t = evidence.thresholds
        found = []
        for node in evidence.nodes.values():
            if node.node_type != "llm" or not enough(node, evidence):
                continue
            points = [
                (e.completion_tokens, e.elapsed_ms)
                for e in evidence.node_executions(node.node_id)
                if e.completion_tokens and e.elapsed_ms is not None and e.status == "succeeded"
            ]
            if len(points) < t.min_executions or len({p[0] for p in points}) < 3:
                continue
            tokens = [p[0] for p in points]
            times = [p[1] for p in points]
            rho, p_value = stats.spearmanr(tokens, times)
            if not rho >= t.output_latency_correlation or p_value > 1 - t.min_significance:
                continue
            slope = float(stats.theilslopes(times, tokens).slope)  # ms per token
            if slope <= 0:
                continue
            cap = float(np.percentile(tokens, 90))
            savings = replay_savings(
                evidence.sample,
                evidence.needs(),
                functools.partial(_shorter_output, node_id=node.node_id, cap=cap, slope=slope),
            )
            if not significant_saving(savings.mean_ms, evidence):
                continue
            found.append(
                self.finding(
                    evidence,
                    title=f"Output length drives the latency of {name_of(node)}",
                    description=(
                        f"Each output token adds about {slope:.1f} ms to {name_of(node)} "
                        f"(Spearman rho {rho:.2f} over {len(points)} executions). Capping "
                        f"outputs at their p90 length ({cap:.0f} tokens) would shorten runs "
                        f"by {savings.mean_ms:.0f} ms on average."
                    ),
                    node_ids=[node.node_id],
                    figures={
                        "spearman_rho": float(rho),
                        "p_value": float(p_value),
                        "ms_per_output_token": slope,
                        "p90_completion_tokens": cap,
                        "max_completion_tokens": max(tokens),
                        "mean_saving_ms_per_run": savings.mean_ms,
                    },
                    sample_size=len(points),
                    impact=Impact(latency_ms_per_run=savings.mean_ms),
                    confidence=1 - float(p_value),
                    steps=(
                        f"Set max_tokens near {max(cap, 1):.0f} (the p90 of its outputs) and ask "
                        "for concise output in the prompt.",
                        "Stream the answer to users so they read while it is generated.",
                        "Try a faster model of the same provider for this node.",
                    ),
                )
            )
        return found


def _worth_speeding_up_besides(node_id: str, evidence: Evidence) -> bool:
    """Whether halving another node would save a typical run a significant time (the
    replayed saving of the bottlenecks, else half the node's critical-path time)."""
    for other in evidence.nodes.values():
        if other.node_id == node_id:
            continue
        saving = other.halving_saving_ms_per_run
        if saving is None:
            saving = other.critical_path_ms_per_run / 2
        if significant_saving(saving, evidence):
            return True
    return False


def _capped(e: SampleExecution, node_id: str, cap_us: int) -> int | None:
    if e.node_id != node_id or e.end_us is None:
        return None
    return min(e.end_us - e.start_us, cap_us)


def _shorter_output(e: SampleExecution, node_id: str, cap: float, slope: float) -> int | None:
    if e.node_id != node_id or e.end_us is None or not e.completion_tokens:
        return None
    excess = max(0.0, e.completion_tokens - cap)
    return round(max(0.0, e.end_us - e.start_us - excess * slope * 1000))


def _speedups(node_type: str) -> tuple[str, ...]:
    by_type = {
        "llm": (
            "Use a faster model for this node, or split its prompt into smaller parallel calls.",
            "Cap output length (max_tokens) and trim the prompt's context.",
        ),
        "knowledge-retrieval": (
            "Lower top_k or turn off reranking where it does not change answers.",
            "Cache retrieval results for repeated queries.",
        ),
        "http-request": (
            "Cache GET responses, move the call off the critical path, or ask the upstream "
            "service for a faster endpoint.",
        ),
        "tool": ("Cache the tool's results, or run it in parallel with other work.",),
    }
    common = ("Check what else could run while this node runs (the bottlenecks view).",)
    return by_type.get(node_type, ("Profile the node's own work.",)) + common
