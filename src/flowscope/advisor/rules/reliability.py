"""Reliability: nodes that fail, retry, or fail in bursts."""

from __future__ import annotations

from collections import Counter

from scipy import stats

from flowscope.advisor.evidence import Evidence, SampleExecution
from flowscope.advisor.rules.base import Finding, Impact, Rule, enough, name_of
from flowscope.advisor.simulate import replay_savings

MIN_FAILURES = 10
"""Failures a node needs before their timing says anything."""
MIN_RETRIED = 5
WORST_HOURS_SHARE = 0.1


class HighErrorRate(Rule):
    """A node fails (or fails and is handled by an error strategy) too often.

    Fires when the node's failure rate over the window is at least `error_rate` and a
    one-sided binomial test says the true rate is above it with `min_significance`. The
    impact is the share of runs that saw the node fail.
    """

    id = "high-error-rate"
    category = "reliability"

    def evaluate(self, evidence: Evidence) -> list[Finding]:
        t = evidence.thresholds
        found = []
        for node in evidence.nodes.values():
            if not enough(node, evidence) or node.error_rate < t.error_rate:
                continue
            test = stats.binomtest(node.failed, node.executions, t.error_rate, "greater")
            if test.pvalue > 1 - t.min_significance:
                continue
            runs = max(1, evidence.runs)
            errors = Counter(
                e.error for e in evidence.node_executions(node.node_id) if e.error
            ).most_common(3)
            found.append(
                self.finding(
                    evidence,
                    title=f"{name_of(node)} fails in {node.error_rate:.1%} of executions",
                    description=(
                        f"{node.failed} of {node.executions} executions of {name_of(node)} "
                        f"failed in the window (threshold {t.error_rate:.0%})."
                        + (f" Most common error: {errors[0][0]!r}." if errors else "")
                    ),
                    node_ids=[node.node_id],
                    figures={
                        "failed": node.failed,
                        "executions": node.executions,
                        "error_rate": node.error_rate,
                        "p_value": float(test.pvalue),
                        "top_errors": [{"error": e, "count": n} for e, n in errors],
                    },
                    sample_size=node.executions,
                    impact=Impact(error_rate=min(1.0, node.failed / runs)),
                    confidence=1 - float(test.pvalue),
                    steps=(
                        "Read the most common errors above and fix their cause upstream.",
                        "Turn on retries with backoff for transient errors (429, 5xx).",
                        "Give the node an error strategy (a fail branch or a default value) so "
                        "that one failure does not fail the run.",
                    ),
                )
            )
        return found


class RetriesConsumeTime(Rule):
    """Retries take a noticeable share of a node's time.

    From the sampled executions, the time spent before the last attempt is estimated as
    the execution's time times retries / (retries + 1) (attempts of equal length); fires when
    that is at least `retry_time_share` of the node's time. The impact replays the sampled
    runs without that time, averaged over runs.
    """

    id = "retries-consume-time"
    category = "reliability"

    def evaluate(self, evidence: Evidence) -> list[Finding]:
        t = evidence.thresholds
        found = []
        for node in evidence.nodes.values():
            if not enough(node, evidence) or not node.retries:
                continue
            executions = [
                e for e in evidence.node_executions(node.node_id) if e.elapsed_ms is not None
            ]
            retried = [e for e in executions if e.retry_count]
            if len(retried) < MIN_RETRIED:
                continue
            total = sum(e.elapsed_ms or 0.0 for e in executions)
            lost = sum(_retry_ms(e) for e in retried)
            if total <= 0 or lost / total < t.retry_time_share:
                continue
            savings = replay_savings(
                evidence.sample,
                evidence.needs(),
                lambda e, n=node.node_id: _without_retries(e, n),  # type: ignore[misc]
            )
            found.append(
                self.finding(
                    evidence,
                    title=f"Retries take {lost / total:.0%} of {name_of(node)}'s time",
                    description=(
                        f"{len(retried)} of {len(executions)} sampled executions of "
                        f"{name_of(node)} were retried; the attempts before the last took about "
                        f"{lost / total:.0%} of the node's time, and runs "
                        f"{savings.mean_ms:.0f} ms longer on average."
                    ),
                    node_ids=[node.node_id],
                    figures={
                        "retried_executions": len(retried),
                        "sampled_executions": len(executions),
                        "retry_time_share": lost / total,
                        "retries_in_window": node.retries,
                        "mean_saving_ms_per_run": savings.mean_ms,
                    },
                    sample_size=len(executions),
                    impact=Impact(latency_ms_per_run=savings.mean_ms or None),
                    confidence=min(1.0, len(retried) / 50),
                    steps=(
                        "Find why first attempts fail (rate limits, timeouts) and fix that "
                        "rather than retrying.",
                        "Shorten the retry interval or the per-attempt timeout, so a failed "
                        "attempt costs less time.",
                    ),
                )
            )
        return found


class FailuresConcentratedInTime(Rule):
    """A node's failures cluster in a few hours: outages or rate limits, not random errors.

    Over the hours in which the node ran, fires when its worst 10% of hours hold at least
    `failure_concentration` of its failures and a chi-square test rejects failures spread in
    proportion to executions with `min_significance`. Needs at least 10 failures.
    """

    id = "failures-concentrated-in-time"
    category = "reliability"
    refines = ("high-error-rate",)

    def evaluate(self, evidence: Evidence) -> list[Finding]:
        t = evidence.thresholds
        found = []
        for node_id, hours in evidence.hourly.items():
            node = evidence.nodes.get(node_id)
            if node is None or not enough(node, evidence) or len(hours) < 10:
                continue
            failed = sum(h[2] for h in hours)
            executions = sum(h[1] for h in hours)
            if failed < MIN_FAILURES or executions <= failed:
                continue
            worst = sorted(hours, key=lambda h: -h[2])[
                : max(1, round(len(hours) * WORST_HOURS_SHARE))
            ]
            share = sum(h[2] for h in worst) / failed
            if share < t.failure_concentration:
                continue
            rate = failed / executions
            observed = [h[2] for h in hours] + [h[1] - h[2] for h in hours]
            expected = [h[1] * rate for h in hours] + [h[1] * (1 - rate) for h in hours]
            chi2 = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True) if e)
            p_value = float(stats.chi2.sf(chi2, len(hours) - 1))
            if p_value > 1 - t.min_significance:
                continue
            worst_failed = sum(h[2] for h in worst)
            found.append(
                self.finding(
                    evidence,
                    title=f"{name_of(node)}'s failures come in bursts",
                    description=(
                        f"{share:.0%} of {name_of(node)}'s {failed} failures fell in "
                        f"{len(worst)} of the {len(hours)} hours it ran: an upstream outage or "
                        "rate limit rather than random errors."
                    ),
                    node_ids=[node_id],
                    figures={
                        "failures": failed,
                        "hours": len(hours),
                        "worst_hours": [
                            {"hour": h[0], "executions": h[1], "failed": h[2]} for h in worst[:5]
                        ],
                        "share_in_worst_hours": share,
                        "chi2_p_value": p_value,
                    },
                    sample_size=executions,
                    impact=Impact(error_rate=min(1.0, worst_failed / max(1, evidence.runs))),
                    confidence=1 - p_value,
                    steps=(
                        "Check the upstream service's status and rate limits at the worst hours.",
                        "Add a circuit breaker or a fallback (another provider or model) for "
                        "those periods, and alert on this node's error rate.",
                    ),
                )
            )
        return found


def _retry_ms(e: SampleExecution) -> float:
    return (e.elapsed_ms or 0.0) * e.retry_count / (e.retry_count + 1)


def _without_retries(e: SampleExecution, node_id: str) -> int | None:
    if e.node_id != node_id or not e.retry_count or e.end_us is None:
        return None
    return round(e.end_us - e.start_us - _retry_ms(e) * 1000)
