"""Regressions in trend series: where a metric moved to a new level and stayed there.

Method (E-divisive means, as used by MongoDB's performance CI: Daly et al., ICPE 2020, "Change
Point Detection in Software Performance Testing"; the statistic is Matteson & James 2014):

1. Skip NaNs (empty buckets) and infinities. For hourly series, remove the hour-of-day profile
   by dividing each point by its hour's median (latency profiles scale: a busy hour makes every
   call slower by a factor, not by a constant), then multiplying by the overall median so the
   series keeps its units. If some hour's median is not positive, the profile is subtracted
   instead (and the overall median added back).
2. Bisection: in a segment, pick the split that maximises the energy-distance statistic
   between its left and right parts, test it with a permutation test (shuffle the segment,
   recompute the maximum), and recurse on both sides while significant. Both sides always
   keep at least `min_segment` points.
3. Confirm each candidate against its neighbours (the segments between it and the candidates
   either side) with a two-sided Mann-Whitney U test, and keep it only when that test is
   significant too and the medians differ by at least `min_change_pct`. A candidate that fails
   is dropped (the weakest first) and its neighbours re-checked against the merged segment.

`before` and `after` are medians, robust to the odd slow bucket; `change_pct` compares them
(a change from a median of 0 has no percentage and is not reported).
The energy statistic alone flags small but consistent shifts; Mann-Whitney alone (or a t-test)
flags noise at the best of many splits; requiring both, plus a practical size, keeps a noisy
but stable series quiet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import mannwhitneyu

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ChangePoint:
    """A shift in level: `index` is the first point of the new regime, in the input's indices.

    `before` and `after` are the medians of the segments between this change point and its
    neighbours (profile-adjusted values for hourly series); `confidence` is 1 - max(p-values of
    the permutation test that found it and of the Mann-Whitney test against its neighbours).
    """

    index: int
    before: float
    after: float
    change_pct: float
    confidence: float


def find_change_points(
    values: Sequence[float],
    *,
    min_segment: int = 5,
    min_change_pct: float = 10.0,
    alpha: float = 0.01,
    permutations: int = 199,
    seed: int = 0,
    hour_of_day: Sequence[int] | None = None,
) -> list[ChangePoint]:
    """Change points in `values`, in order; deterministic for a given `seed`.

    `hour_of_day` (one entry per value) removes a daily profile first; see the module docstring.

    >>> [(p.index, p.before, p.after) for p in find_change_points([10.0] * 6 + [20.0] * 6)]
    [(6, 10.0, 20.0)]
    """
    if min_segment < 2:
        raise ValueError("min_segment must be at least 2")
    if (1 / (permutations + 1)) > alpha:
        raise ValueError(f"{permutations} permutations cannot reach a p-value of {alpha}")
    if hour_of_day is not None and len(hour_of_day) != len(values):
        raise ValueError("hour_of_day must have one entry per value")

    raw = np.asarray(values, dtype=np.float64)
    kept = np.flatnonzero(np.isfinite(raw))  # NaN marks an empty bucket
    series = raw[kept]
    if hour_of_day is not None:
        series = _remove_daily_profile(series, np.asarray(hour_of_day)[kept])
    if len(series) < 2 * min_segment:
        return []

    rng = np.random.default_rng(seed)
    candidates: dict[int, float] = {}  # split index -> permutation p-value
    _bisect(series, 0, len(series), min_segment, alpha, permutations, rng, candidates)
    return [
        ChangePoint(int(kept[cp.index]), cp.before, cp.after, cp.change_pct, cp.confidence)
        for cp in _confirm(series, candidates, alpha, min_change_pct)
    ]


def _remove_daily_profile(series: FloatArray, hours: npt.NDArray[np.int_]) -> FloatArray:
    overall = float(np.median(series))
    medians = {int(h): float(np.median(series[hours == h])) for h in np.unique(hours)}
    profile = np.array([medians[int(h)] for h in hours])
    if all(m > 0 for m in medians.values()):
        return np.asarray(series / profile * overall, dtype=np.float64)
    return np.asarray(series - profile + overall, dtype=np.float64)


def energy_statistics(x: FloatArray, min_segment: int) -> FloatArray:
    """q(tau) for every split tau of `x` (NaN where a side would be shorter than `min_segment`).

    q = m*k/(m+k) * (2/(m*k) * B - W_L / C(m,2) - W_R / C(k,2)), with B the sum of |x_i - y_j|
    across the split and W_L, W_R the sums over pairs within each side (Matteson & James 2014).
    """
    distances = np.abs(np.subtract.outer(x, x))
    return _split_scores(x, distances.sum(axis=1), _upper(len(x)), min_segment)


def _upper(n: int) -> FloatArray:
    return np.triu(np.ones((n, n)), 1)


def _split_scores(
    x: FloatArray, row_sums: FloatArray, upper: FloatArray, min_segment: int
) -> FloatArray:
    # One pass over the distance matrix gives each point's distances to the points before it;
    # its row sum minus that is the distances to the points after it. Prefix sums of those give
    # W_L and W_R for every split at once, and B is the total minus both: O(n^2) per series.
    n = len(x)
    distances = np.subtract.outer(x, x)
    np.abs(distances, out=distances)
    to_earlier = np.einsum("it,it->t", upper, distances)  # sum_{i<t} |x_i - x_t|
    to_later = row_sums - to_earlier  # sum_{j>t} |x_t - x_j|
    within_left = np.concatenate(([0.0], np.cumsum(to_earlier)))  # split tau: sum over t < tau
    within_right = np.concatenate((np.cumsum(to_later[::-1])[::-1], [0.0]))  # over t >= tau
    between = within_left[-1] - within_left - within_right

    q = np.full(n + 1, np.nan)
    tau = np.arange(min_segment, n - min_segment + 1)
    if len(tau) == 0:
        return q
    m = tau.astype(np.float64)
    k = n - m
    q[tau] = (m * k / n) * (
        2 * between[tau] / (m * k)
        - within_left[tau] / (m * (m - 1) / 2)
        - within_right[tau] / (k * (k - 1) / 2)
    )
    return q


def _permutation_p_value(
    x: FloatArray,
    observed: float,
    min_segment: int,
    alpha: float,
    permutations: int,
    rng: np.random.Generator,
) -> float:
    """p = (#shuffles whose best split scores >= observed, + 1) / (permutations + 1).

    Stops early (returning 1.0) once p can no longer reach `alpha`: most segments of a stable
    series are rejected after a few shuffles.
    """
    # A point's distances to all others do not depend on the order: compute them once.
    row_sums = np.abs(np.subtract.outer(x, x)).sum(axis=1)
    upper = _upper(len(x))
    # Float noise must not turn a tie into a win for the observed split.
    threshold = observed - 1e-9 * max(abs(observed), 1.0)
    exceed_limit = alpha * (permutations + 1) - 1
    exceeded = 0
    for _ in range(permutations):
        order = rng.permutation(len(x))
        scores = _split_scores(x[order], row_sums[order], upper, min_segment)
        if float(np.nanmax(scores)) >= threshold:
            exceeded += 1
            if exceeded > exceed_limit:
                return 1.0
    return (exceeded + 1) / (permutations + 1)


def _bisect(
    series: FloatArray,
    start: int,
    end: int,
    min_segment: int,
    alpha: float,
    permutations: int,
    rng: np.random.Generator,
    found: dict[int, float],
) -> None:
    if end - start < 2 * min_segment:
        return
    segment = series[start:end]
    scores = energy_statistics(segment, min_segment)
    tau = int(np.nanargmax(scores))
    observed = float(scores[tau])
    if not observed > 0:  # a constant segment
        return
    p = _permutation_p_value(segment, observed, min_segment, alpha, permutations, rng)
    if p > alpha:
        return
    found[start + tau] = p
    # Left first, then right: the order fixes which shuffles each segment draws from `rng`.
    _bisect(series, start, start + tau, min_segment, alpha, permutations, rng, found)
    _bisect(series, start + tau, end, min_segment, alpha, permutations, rng, found)


def _confirm(
    series: FloatArray, candidates: dict[int, float], alpha: float, min_change_pct: float
) -> list[ChangePoint]:
    kept = sorted(candidates)
    while kept:
        bounds = [0, *kept, len(series)]
        checked = [
            _compare(series, bounds[i], bounds[i + 1], bounds[i + 2], candidates[bounds[i + 1]])
            for i in range(len(kept))
        ]
        failing = [
            i
            for i, cp in enumerate(checked)
            if cp is None or cp.confidence < 1 - alpha or not abs(cp.change_pct) >= min_change_pct
        ]
        if not failing:
            return [cp for cp in checked if cp is not None]
        # Drop the weakest failure, then re-check its neighbours against the merged segment.
        del kept[min(failing, key=lambda i: _strength(checked[i]))]
    return []


def _strength(cp: ChangePoint | None) -> tuple[float, float]:
    if cp is None:
        return (-math.inf, -math.inf)
    return (cp.confidence, abs(cp.change_pct))


def _compare(
    series: FloatArray, start: int, split: int, end: int, permutation_p: float
) -> ChangePoint | None:
    left, right = series[start:split], series[split:end]
    before, after = float(np.median(left)), float(np.median(right))
    if before == 0:
        return None  # no percentage change from zero
    mann_whitney_p = float(mannwhitneyu(left, right, alternative="two-sided").pvalue)
    return ChangePoint(
        index=split,
        before=before,
        after=after,
        change_pct=(after - before) / abs(before) * 100,
        confidence=1 - max(permutation_p, mann_whitney_p),
    )
