"""Small shared conversions from merged rollup figures to wire figures."""

from __future__ import annotations

from flowscope.analytics.sketch import LatencyHistogram
from flowscope.rollups.figures import Figures
from flowscope.rollups.read import latency
from flowscope.schemas.performance import LatencyPercentiles, RunLatency, Tokens

QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


def ratio(part: float, whole: float) -> float | None:
    """part / whole, or None when whole is 0 (nothing to divide)."""
    return part / whole if whole else None


def change_pct(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or before == 0:
        return None
    return (after - before) / abs(before) * 100.0


def amount(value: float) -> float:
    """A summed cost: rounding hides float residue left by taking contributions back."""
    return round(value, 9) + 0.0


def count(figures: Figures, name: str) -> int:
    return round(figures.sums.get(name, 0))


def percentiles(histogram: LatencyHistogram) -> LatencyPercentiles:
    values = histogram.quantiles(tuple(QUANTILES.values()))
    return LatencyPercentiles(mean=histogram.mean, **dict(zip(QUANTILES, values, strict=True)))


def run_latency(figures: Figures) -> RunLatency:
    histogram = latency(figures)
    *values, top = histogram.quantiles((*QUANTILES.values(), 1.0))
    return RunLatency(mean=histogram.mean, max=top, **dict(zip(QUANTILES, values, strict=True)))


def tokens(figures: Figures) -> Tokens:
    return Tokens(
        prompt=count(figures, "prompt_tokens"),
        completion=count(figures, "completion_tokens"),
        total=count(figures, "total_tokens"),
    )
