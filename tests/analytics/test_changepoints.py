"""Change points: steps found where they are, noise left alone, and the statistic's math."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu

from flowscope.analytics import changepoints
from flowscope.analytics.changepoints import (
    ChangePoint,
    energy_statistics,
    find_change_points,
    remove_daily_profile,
)


def noise(seed: int, n: int, cv: float, level: float = 100.0) -> npt.NDArray[np.float64]:
    """Lognormal noise with mean `level` and coefficient of variation `cv`."""
    sigma = math.sqrt(math.log(1 + cv**2))
    return level * np.random.default_rng(seed).lognormal(-(sigma**2) / 2, sigma, n)


def daily(
    seed: int, *, n: int = 60, cv: float = 0.1, steps: dict[int, float] | None = None
) -> list[float]:
    values = noise(seed, n, cv)
    for at, factor in (steps or {}).items():
        values[at:] *= factor
    return [float(v) for v in values]


def hourly(seed: int, *, days: int, cv: float = 0.1) -> tuple[list[float], list[int]]:
    """Twice as slow from 09:00 to 18:00, every day; the series starts at midnight."""
    hours = [h % 24 for h in range(days * 24)]
    profile = np.array([2.0 if 9 <= h < 18 else 1.0 for h in hours])
    return [float(v) for v in profile * noise(seed, len(hours), cv)], hours


def summary(points: list[ChangePoint]) -> list[tuple[int, int]]:
    return [(p.index, round(p.change_pct)) for p in points]


# -- steps --------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [1.2, 1.4, 0.75])
@pytest.mark.parametrize("seed", range(5))
def test_a_step_in_a_noisy_daily_series_is_found_near_its_index(factor: float, seed: int) -> None:
    points = find_change_points(daily(seed, steps={40: factor}))

    assert len(points) == 1, summary(points)
    (point,) = points
    assert abs(point.index - 40) <= 2
    assert point.before == pytest.approx(100, rel=0.08)
    assert point.after == pytest.approx(100 * factor, rel=0.08)
    assert point.change_pct == pytest.approx((factor - 1) * 100, abs=8)
    assert 0.99 <= point.confidence <= 1


def test_most_20_percent_steps_are_located_within_two_points() -> None:
    found = [
        any(abs(p.index - 40) <= 2 for p in find_change_points(daily(seed, steps={40: 1.2})))
        for seed in range(100, 140)
    ]
    assert sum(found) >= 36


def test_two_shifts_up_then_down_are_both_found() -> None:
    for seed in range(5):
        points = find_change_points(daily(seed, n=90, steps={30: 1.4, 60: 1 / 1.4}))

        assert [p.index for p in points] == pytest.approx([30, 60], abs=3), summary(points)
        up, down = points
        assert up.change_pct == pytest.approx(40, abs=10)
        assert down.change_pct == pytest.approx(-28.6, abs=10)
        # Each side is measured against its neighbouring regime, not the whole series.
        assert up.after == down.before


def test_a_change_below_the_threshold_is_not_reported_even_when_significant() -> None:
    values = daily(0, n=200, cv=0.03, steps={100: 1.07})

    assert find_change_points(values) == []
    (point,) = find_change_points(values, min_change_pct=5)
    assert point.index == pytest.approx(100, abs=2)
    assert point.confidence >= 0.99


def test_a_small_change_does_not_hide_a_large_one_nearby() -> None:
    # The 6% step is significant and drops out; the 30% step must still be reported.
    values = daily(1, n=150, cv=0.03, steps={50: 1.06, 100: 1.3})

    assert [p.index for p in find_change_points(values)] == pytest.approx([100], abs=2)


def test_a_change_in_spread_alone_is_not_a_regression() -> None:
    # The right side is bimodal around the left side: its median is 50% higher, and the energy
    # statistic sees a new distribution, but Mann-Whitney finds no shift in location.
    rng = np.random.default_rng(0)
    left = 100 + rng.normal(0, 1, 30)
    right = rng.permutation(np.concatenate([60 + rng.normal(0, 1, 14), 150 + rng.normal(0, 1, 16)]))
    values = [float(v) for v in np.concatenate([left, right])]

    assert find_change_points(values) == []


# -- noise --------------------------------------------------------------------------------


@pytest.mark.parametrize("cv", [0.1, 0.2])
def test_pure_noise_almost_never_yields_a_change_point(cv: float) -> None:
    flagged = [seed for seed in range(20) if find_change_points(daily(seed, cv=cv))]
    assert len(flagged) <= 1, flagged


@pytest.mark.parametrize("cv", [0.1, 0.15, 0.2])
def test_pure_noise_from_a_fixed_seed_set_yields_none(cv: float) -> None:
    assert [summary(find_change_points(daily(seed, cv=cv))) for seed in range(200, 220)] == [
        []
    ] * 20


def test_false_alarm_rate_on_noise_matches_alpha() -> None:
    # The permutation test is exact, so about alpha (1%) of noise series get through it.
    flagged = sum(bool(find_change_points(daily(seed, cv=0.15))) for seed in range(1000, 1200))
    assert flagged <= 6


def test_a_constant_series_has_no_change_point() -> None:
    assert find_change_points([5.0] * 50) == []


# -- hourly series ------------------------------------------------------------------------


def test_a_daily_profile_is_not_a_regression_when_hours_are_given() -> None:
    # A window that ends at 18:00 finishes on nine slow working hours.
    values, hours = hourly(0, days=8)
    values, hours = values[: 7 * 24 + 18], hours[: 7 * 24 + 18]

    assert find_change_points(values, hour_of_day=hours) == []
    # Without the hours, the last working day looks like a regression.
    assert [p.index for p in find_change_points(values)] == [7 * 24 + 9]


@pytest.mark.parametrize("seed", range(3))
def test_a_stable_hourly_series_with_a_profile_yields_none(seed: int) -> None:
    values, hours = hourly(seed, days=30)
    assert find_change_points(values, hour_of_day=hours) == []


@pytest.mark.parametrize("seed", range(3))
def test_a_shift_on_top_of_a_daily_profile_is_found(seed: int) -> None:
    values, hours = hourly(seed, days=30)
    values = values[:480] + [v * 1.3 for v in values[480:]]

    (point,) = find_change_points(values, hour_of_day=hours)
    assert point.index == pytest.approx(480, abs=2)
    assert point.change_pct == pytest.approx(30, abs=4)


# -- short series, NaNs, arguments ---------------------------------------------------------


def test_series_shorter_than_two_segments_have_no_change_point() -> None:
    assert find_change_points([]) == []
    assert find_change_points([1.0] * 4 + [10.0] * 5) == []
    # Two sides of five are allowed, but only 2 of the C(10, 5) = 252 ways to deal the values
    # split them as well, so 199 shuffles rarely give p <= 0.01: a real step needs more points.
    assert find_change_points([1.0] * 5 + [10.0] * 5) == []
    assert [p.index for p in find_change_points([1.0] * 6 + [10.0] * 6)] == [6]
    assert [p.index for p in find_change_points([1.0] * 10 + [10.0] * 3, min_segment=3)] == [10]


def test_nans_are_skipped_and_indices_refer_to_the_input() -> None:
    values = daily(3, steps={40: 1.4})
    for i in (2, 17, 38, 39, 40, 55):
        values[i] = math.nan
    values[20] = math.inf

    (point,) = find_change_points(values)
    assert point.index == pytest.approx(41, abs=2)
    assert not math.isnan(values[point.index])
    assert point.index != 40


def test_too_few_values_besides_nans_have_no_change_point() -> None:
    values = [math.nan] * 30 + [1.0] * 4 + [10.0] * 5
    assert find_change_points(values) == []
    assert find_change_points([math.nan] * 20) == []


def test_results_depend_only_on_the_seed() -> None:
    values = daily(7, n=120, steps={40: 1.25, 80: 0.8})
    first = find_change_points(values, seed=3)
    assert first == find_change_points(values, seed=3)
    assert [p.index for p in first] == [p.index for p in find_change_points(values, seed=4)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_segment": 1}, "min_segment"),
        ({"permutations": 50}, "permutations"),
        ({"hour_of_day": [0, 1]}, "hour_of_day"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        find_change_points([1.0] * 20, **kwargs)  # type: ignore[arg-type]


# -- properties ---------------------------------------------------------------------------


def brute_force_q(x: list[float], tau: int) -> float:
    left, right = x[:tau], x[tau:]
    m, k = len(left), len(right)
    between = sum(abs(a - b) for a in left for b in right)
    within_left = sum(abs(a - b) for a, b in itertools.combinations(left, 2))
    within_right = sum(abs(a - b) for a, b in itertools.combinations(right, 2))
    return (m * k / (m + k)) * (
        2 * between / (m * k) - within_left / math.comb(m, 2) - within_right / math.comb(k, 2)
    )


finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)


@given(st.lists(finite, min_size=4, max_size=30), st.integers(min_value=2, max_value=6))
def test_energy_statistic_matches_its_definition(x: list[float], min_segment: int) -> None:
    q = energy_statistics(np.array(x), min_segment)
    assert len(q) == len(x) + 1
    for tau in range(len(x) + 1):
        if min_segment <= tau <= len(x) - min_segment:
            assert q[tau] == pytest.approx(brute_force_q(x, tau), rel=1e-9, abs=1e-6)
        else:
            assert math.isnan(q[tau])


series = st.lists(
    st.one_of(st.floats(min_value=0.5, max_value=2.0), st.floats(min_value=5, max_value=8)),
    min_size=0,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(series, st.integers(min_value=2, max_value=6), st.integers(min_value=0, max_value=3))
def test_reported_change_points_respect_the_limits(
    values: list[float], min_segment: int, seed: int
) -> None:
    points = find_change_points(values, min_segment=min_segment, permutations=99, seed=seed)

    indices = [p.index for p in points]
    assert indices == sorted(set(indices))
    for p in points:
        assert min_segment <= p.index <= len(values) - min_segment
        assert abs(p.change_pct) >= 10
        assert 0.99 <= p.confidence <= 1
        assert p.change_pct == pytest.approx((p.after - p.before) / p.before * 100)


@settings(max_examples=30, deadline=None)
@given(series, st.integers(min_value=-8, max_value=8))
def test_change_points_do_not_depend_on_the_unit(values: list[float], power: int) -> None:
    # Scaling by a power of two is exact in floating point, so the results must match exactly.
    scale = 2.0**power
    plain = find_change_points(values, permutations=99)
    scaled = find_change_points([v * scale for v in values], permutations=99)

    assert [(p.index, p.change_pct, p.confidence) for p in scaled] == [
        (p.index, p.change_pct, p.confidence) for p in plain
    ]


# -- the batched computation against the plain one -----------------------------------------


def plain_scores(x: npt.NDArray[np.float64], min_segment: int) -> npt.NDArray[np.float64]:
    """q at every split from the n x n distance matrix, as in the paper."""
    n = len(x)
    distances = np.abs(np.subtract.outer(x, x))
    to_earlier = np.tril(distances, -1).sum(axis=1)  # point t: sum over i < t
    to_later = np.triu(distances, 1).sum(axis=1)  # point t: sum over j > t
    within_left = np.concatenate(([0.0], np.cumsum(to_earlier)))
    within_right = np.concatenate((np.cumsum(to_later[::-1])[::-1], [0.0]))
    between = within_left[-1] - within_left - within_right
    q = np.full(n + 1, np.nan)
    for tau in range(min_segment, n - min_segment + 1):
        m, k = tau, n - tau
        q[tau] = (m * k / n) * (
            2 * between[tau] / (m * k)
            - within_left[tau] / math.comb(m, 2)
            - within_right[tau] / math.comb(k, 2)
        )
    return q


def plain_change_points(
    values: list[float],
    *,
    min_segment: int = 5,
    min_change_pct: float = 10.0,
    alpha: float = 0.01,
    permutations: int = 199,
    seed: int = 0,
) -> list[ChangePoint]:
    """The method written straightforwardly: one shuffle at a time, each scored from scratch."""
    x = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    found: dict[int, float] = {}

    def bisect(start: int, end: int) -> None:
        if end - start < 2 * min_segment:
            return
        segment = x[start:end]
        scores = plain_scores(segment, min_segment)
        tau = int(np.nanargmax(scores))
        observed = float(scores[tau])
        if not observed > 0:
            return
        threshold = observed - 1e-9 * max(abs(observed), 1.0)
        exceeded, p = 0, None
        for _ in range(permutations):
            shuffled = segment[rng.permutation(len(segment))]
            if np.nanmax(plain_scores(shuffled, min_segment)) >= threshold:
                exceeded += 1
                if exceeded > alpha * (permutations + 1) - 1:
                    p = 1.0
                    break
        p = (exceeded + 1) / (permutations + 1) if p is None else p
        if p > alpha:
            return
        found[start + tau] = p
        bisect(start, start + tau)
        bisect(start + tau, end)

    def compare(start: int, split: int, end: int) -> ChangePoint | None:
        left, right = x[start:split], x[split:end]
        before, after = float(np.median(left)), float(np.median(right))
        if before == 0:
            return None
        mann_whitney_p = float(mannwhitneyu(left, right, alternative="two-sided").pvalue)
        change_pct = (after - before) / abs(before) * 100
        return ChangePoint(split, before, after, change_pct, 1 - max(found[split], mann_whitney_p))

    bisect(0, len(x))
    kept = sorted(found)
    while kept:
        bounds = [0, *kept, len(x)]
        checked = [compare(bounds[i], bounds[i + 1], bounds[i + 2]) for i in range(len(kept))]
        failing = [
            i
            for i, cp in enumerate(checked)
            if cp is None or cp.confidence < 1 - alpha or not abs(cp.change_pct) >= min_change_pct
        ]
        if not failing:
            return [cp for cp in checked if cp is not None]
        del kept[min(failing, key=lambda i: strength(checked[i]))]
    return []


def strength(cp: ChangePoint | None) -> tuple[float, float]:
    return (-math.inf, -math.inf) if cp is None else (cp.confidence, abs(cp.change_pct))


def random_series(seed: int) -> tuple[list[float], dict[str, Any]]:
    """Noise with up to two steps (sometimes rounded, for ties) and random settings."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 61))
    values = noise(seed, n, cv=float(rng.choice([0.03, 0.1, 0.2])))
    for _ in range(int(rng.integers(0, 3))):
        values[int(rng.integers(1, n)) :] *= float(rng.choice([0.7, 0.8, 1.15, 1.3, 1.5]))
    if rng.random() < 0.2:
        values = np.round(values / 5) * 5
    settings = {
        "min_segment": int(rng.choice([2, 3, 5])),
        "alpha": float(rng.choice([0.01, 0.05])),
        "permutations": int(rng.choice([99, 199])),
        "min_change_pct": float(rng.choice([3.0, 10.0])),
        "seed": int(rng.integers(0, 4)),
    }
    return [float(v) for v in values], settings


@pytest.mark.parametrize("blocks", ["direct", "blocked"])
def test_change_points_match_the_plain_computation(
    blocks: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Same shuffles, same early stops, same p-values: the results are identical, not just close.
    if blocks == "blocked":  # the block decomposition even for these short segments
        monkeypatch.setattr(changepoints, "_DIRECT_CELLS", 0)
    found = 0
    for seed in range(30):
        values, settings = random_series(seed)
        expected = plain_change_points(values, **settings)
        assert find_change_points(values, **settings) == expected, (seed, settings)
        found += len(expected)
    assert found >= 15  # the comparison covers detections, not only empty results


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=30), min_size=2, max_size=70),
    st.integers(min_value=2, max_value=12),
    st.integers(min_value=0, max_value=3),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_block_decomposition_sums_every_earlier_pair_once(
    ints: list[int], block: int, shift: int, seed: int
) -> None:
    # S[t] = sum over i < t of min(y_i, y_t), for a few shuffles at once; small integers for ties.
    x = np.array(ints, dtype=np.float64) * 0.37
    ranked = changepoints._Ranked(x)
    rng = np.random.default_rng(seed)
    shuffles = np.stack([ranked.ranks[rng.permutation(len(x))] for _ in range(3)], axis=1)
    sums = changepoints._earlier_min_sums(
        ranked.values, shuffles, block, shift, changepoints._Scratch()
    )[: len(x)]
    y = ranked.values[shuffles]
    expected = [[np.minimum(y[:t, p], y[t, p]).sum() for p in range(3)] for t in range(len(x))]
    np.testing.assert_allclose(sums, expected, rtol=1e-12, atol=1e-9)


def test_the_daily_profile_is_removed_alike_with_and_without_empty_buckets() -> None:
    """One rule for the search (finite values only) and for placing a change by the hour
    (NaN for empty buckets): the same values come out where there is data."""
    rng = np.random.default_rng(3)
    hours = np.arange(96) % 24
    values = 100.0 * (1 + (hours >= 9) * (hours < 18)) * rng.uniform(0.9, 1.1, 96)
    with_gaps = values.copy()
    with_gaps[[5, 30, 31, 77]] = np.nan
    kept = np.isfinite(with_gaps)
    full = remove_daily_profile(with_gaps, hours)
    assert np.isnan(full[~kept]).all()
    assert np.allclose(full[kept], remove_daily_profile(values[kept], hours[kept]))
    # Busy hours no longer stand out: the day's shape is gone, the level (~150) stays.
    assert abs(np.median(full[kept][hours[kept] >= 9]) - np.median(full[kept])) < 10
    assert 100 < np.median(full[kept]) < 220
