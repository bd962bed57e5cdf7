"""The advisor's thresholds: defaults, overridable with the `advisor_thresholds` setting."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


class ThresholdError(ValueError):
    """An unknown threshold name or a value of the wrong kind; the message names it."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When rules fire (docs/advisor.md explains each)."""

    min_executions: int = 30
    """Executions a node (or runs a workflow) needs in the window before any rule speaks."""
    sample_runs: int = 2000
    """Most recent finished runs read raw for the simulations (cache, parallel, tokens)."""
    dominant_critical_path_share: float = 0.4
    tail_ratio: float = 4.0
    """p99 over p50 from which a node's tail is high."""
    output_latency_correlation: float = 0.6
    """Spearman correlation of completion tokens and latency from which output length drives
    an LLM node's latency."""
    min_would_hit_rate: float = 0.1
    expensive_model_max_prompt_tokens: int = 1500
    expensive_model_max_completion_tokens: int = 150
    cheaper_model_max_cost_share: float = 0.5
    """A cheaper model is suggested only if it would cost at most this share of the current."""
    prompt_cost_share: float = 0.7
    min_prompt_tokens: int = 2000
    """Prompts shorter than this (mean) are not worth trimming."""
    error_rate: float = 0.05
    retry_time_share: float = 0.1
    failure_concentration: float = 0.5
    """Share of a node's failures in its worst 10% of hours from which they are concentrated."""
    growth_pct: float = 10.0
    min_saving_ms: float = 200.0
    """Parallelization and sequential iterations: the smallest median saving per run, unless
    it is at least `min_saving_share` of the median run."""
    min_saving_share: float = 0.1
    min_significance: float = 0.99
    """Statistical rules fire only when their test is at least this sure (1 - p-value)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_thresholds(overrides: Mapping[str, Any] | None) -> Thresholds:
    """Defaults with `overrides` applied; unknown names and wrong kinds are refused."""
    if not overrides:
        return Thresholds()
    known = {f.name: f for f in fields(Thresholds)}
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in known:
            raise ThresholdError(f"unknown advisor threshold {name!r}; known: {sorted(known)}")
        default = getattr(Thresholds(), name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ThresholdError(f"advisor threshold {name!r} must be a number")
        if isinstance(default, int) and not float(value).is_integer():
            raise ThresholdError(f"advisor threshold {name!r} must be a whole number")
        if value < 0:
            raise ThresholdError(f"advisor threshold {name!r} must not be negative")
        changes[name] = type(default)(value)
    return replace(Thresholds(), **changes)
