"""Scalability: runs getting slower, dearer or hungrier as time goes on."""

from __future__ import annotations

from scipy import stats

from flowscope.advisor.evidence import Evidence
from flowscope.advisor.rules.base import Finding, Impact, Rule
from flowscope.timeutil import DAY_US

MIN_DAYS = 5
_LABELS = {
    "latency_p50_ms": ("median run time", "ms"),
    "latency_p95_ms": ("p95 run time", "ms"),
    "cost_per_run": ("cost per run", ""),
    "node_latency_mean_ms": ("mean latency", "ms"),
}


class RisingLatencyOrCost(Rule):
    """Run time or cost per run stepped up during the window (the trends' regressions).

    Takes the change points the trends endpoint finds (E-divisive means confirmed by a
    Mann-Whitney test) in median and p95 run time, cost per run and the latency of the
    critical-path nodes, and fires for each rise of at least `growth_pct`. A node's rise is
    weighted by how often the node is on the critical path to estimate the time it adds to
    runs.
    """

    id = "rising-latency-or-cost"
    category = "scalability"

    def evaluate(self, evidence: Evidence) -> list[Finding]:
        found = []
        for r in evidence.regressions:
            if r.metric not in _LABELS or r.change_pct < evidence.thresholds.growth_pct:
                continue
            label, unit = _LABELS[r.metric]
            rise = r.after - r.before
            node = evidence.nodes.get(r.node_id or "")
            if r.metric == "cost_per_run":
                impact = Impact(cost_per_1k_runs=rise * 1000)
            elif node is not None:
                impact = Impact(latency_ms_per_run=rise * node.on_critical_path_rate)
            else:
                impact = Impact(latency_ms_per_run=rise)
            who = f"{node.title or node.node_id} ({node.node_id})'s" if node else "The workflow's"
            found.append(
                self.finding(
                    evidence,
                    title=f"{who} {label} rose {r.change_pct:.0f}%",
                    description=(
                        f"{who} {label} went from {r.before:.4g}{unit} to {r.after:.4g}{unit} "
                        f"(+{r.change_pct:.0f}%) from {_iso(r.starts_at_us)} on, and stayed there."
                    ),
                    node_ids=[r.node_id] if r.node_id else [],
                    figures={
                        "metric": r.metric,
                        "before": r.before,
                        "after": r.after,
                        "change_pct": r.change_pct,
                        "starts_at": _iso(r.starts_at_us),
                    },
                    sample_size=evidence.runs,
                    impact=impact,
                    confidence=r.confidence,
                    subject=r.metric,
                    steps=(
                        f"Compare runs before and after {_iso(r.starts_at_us)}: a deploy, a new "
                        "workflow version, a model or provider change, larger inputs?",
                        "Open the trends view around that time to see which node moved first.",
                    ),
                )
            )
        return found


class TokensPerRunGrowing(Rule):
    """Tokens per run keep growing over the window (longer histories, more context).

    Over the days with runs (at least five), fires when a Kendall tau test finds a rising
    trend in tokens per run with `min_significance` and the Theil-Sen line grows at least
    `growth_pct` over the window. The impact is the extra cost per 1,000 runs at the end of
    the window against its start, at the window's cost per token.
    """

    id = "tokens-per-run-growing"
    category = "scalability"

    def evaluate(self, evidence: Evidence) -> list[Finding]:
        days = [(d, tokens / runs) for d, runs, tokens, _ in evidence.daily if runs > 0]
        if len(days) < MIN_DAYS or evidence.runs < evidence.thresholds.min_executions:
            return []
        xs = [d / DAY_US for d, _ in days]
        ys = [y for _, y in days]
        tau, p_value = stats.kendalltau(xs, ys)
        if not tau > 0 or p_value > 1 - evidence.thresholds.min_significance:
            return []
        fit = stats.theilslopes(ys, xs)
        start = fit.intercept + fit.slope * xs[0]
        end = fit.intercept + fit.slope * xs[-1]
        if start <= 0:
            return []
        growth = (end - start) / start * 100
        if growth < evidence.thresholds.growth_pct:
            return []
        tokens = sum(t for _, _, t, _ in evidence.daily)
        cost = sum(c for _, _, _, c in evidence.daily)
        per_token = cost / tokens if tokens else 0.0
        return [
            self.finding(
                evidence,
                title=f"Tokens per run grew {growth:.0f}% over the window",
                description=(
                    f"Runs used about {start:.0f} tokens at the start of the window and "
                    f"{end:.0f} at its end (Kendall tau {tau:.2f}); at this rate prompts keep "
                    "getting longer."
                ),
                figures={
                    "tokens_per_run_start": start,
                    "tokens_per_run_end": end,
                    "growth_pct": growth,
                    "kendall_tau": float(tau),
                    "p_value": float(p_value),
                    "days": len(days),
                },
                sample_size=evidence.runs,
                impact=Impact(cost_per_1k_runs=(end - start) * per_token * 1000 or None),
                confidence=1 - float(p_value),
                steps=(
                    "Find what grows: conversation history, retrieved chunks, or tool output "
                    "passed on whole (the nodes view, tokens by node).",
                    "Cap history and context length, or summarise older turns.",
                ),
            )
        ]


def _iso(us: int) -> str:
    from flowscope.timeutil import from_us

    return from_us(us).isoformat().replace("+00:00", "Z")
