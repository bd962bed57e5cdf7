"""Latency histograms: percentiles against numpy's exact values, lossless merges, storage."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowscope.analytics.sketch import (
    MIN_VALUE_MS,
    RELATIVE_ACCURACY,
    LatencyHistogram,
    merged,
)

QUANTILES = [0.5, 0.9, 0.95, 0.99, 1.0]

# Durations from 0.01 ms to 10^7 ms (almost three hours), spread over the orders of magnitude.
log_uniform = st.floats(min_value=-2, max_value=7).map(lambda exponent: 10.0**exponent)
positive = st.one_of(log_uniform, st.floats(min_value=0.01, max_value=1e7))
with_zeros = st.one_of(positive, st.just(0.0), st.floats(min_value=0, max_value=3 * MIN_VALUE_MS))


@st.composite
def lognormal(draw: st.DrawFn) -> list[float]:
    """Heavy-tailed latencies: a median from 1 ms to 1 s and a spread of up to 3 (log scale)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    median = 10.0 ** draw(st.floats(0, 3))
    sigma = draw(st.floats(0.25, 3))
    values = rng.lognormal(math.log(median), sigma, draw(st.integers(1, 5000)))
    return [float(v) for v in np.clip(values, 0.01, 1e7)]


def exact(values: list[float], q: float) -> float:
    return float(np.quantile(values, q, method="inverted_cdf"))


def same(a: LatencyHistogram, b: LatencyHistogram) -> None:
    assert (a.buckets, a.zeros, a.count, a.min_ms, a.max_ms) == (
        b.buckets,
        b.zeros,
        b.count,
        b.min_ms,
        b.max_ms,
    )
    assert a.sum_ms == pytest.approx(b.sum_ms, rel=1e-12)
    for q in [0.0, 0.01, 0.25, *QUANTILES]:
        assert a.quantile(q) == b.quantile(q)


# -- accuracy -----------------------------------------------------------------------------


def assert_within_accuracy(values: list[float]) -> None:
    histogram = LatencyHistogram.of(values)
    errors = []
    for q in QUANTILES:
        got, want = histogram.quantile(q), exact(values, q)
        assert got is not None
        errors.append(abs(got - want) / want)
    assert max(errors) <= 0.02, errors  # what reports promise
    # What the buckets guarantee: 1%, give or take rounding at a bucket's edge.
    assert max(errors) <= RELATIVE_ACCURACY * (1 + 1e-9), errors
    assert histogram.quantile(1.0) == max(values)


@given(st.lists(positive, min_size=1, max_size=500))
@settings(max_examples=300, deadline=None)
def test_percentiles_are_within_one_percent_of_nearest_rank(values: list[float]) -> None:
    assert_within_accuracy(values)


@given(lognormal())
@settings(max_examples=100, deadline=None)
def test_percentiles_of_heavy_tailed_latencies_are_within_one_percent(values: list[float]) -> None:
    assert_within_accuracy(values)


@given(st.lists(with_zeros, min_size=1, max_size=300))
@settings(max_examples=200, deadline=None)
def test_zeros_and_tiny_values_are_off_by_less_than_a_microsecond(values: list[float]) -> None:
    histogram = LatencyHistogram.of(values)
    for q in [0.0, 0.1, *QUANTILES]:
        got, want = histogram.quantile(q), exact(values, q)
        assert got is not None
        assert abs(got - want) <= max(RELATIVE_ACCURACY * (1 + 1e-9) * want, MIN_VALUE_MS)
    assert histogram.zeros == sum(v < MIN_VALUE_MS for v in values)
    assert histogram.quantile(0.0) == min(values)


def test_zeros_are_counted_apart_and_read_as_zero() -> None:
    histogram = LatencyHistogram.of([0.0, 0.0, 0.0005, 5.0, MIN_VALUE_MS])

    assert (histogram.zeros, histogram.count, sum(histogram.buckets.values())) == (3, 5, 2)
    assert histogram.quantile(0.5) == 0.0
    assert histogram.quantile(0.6) == 0.0  # rank 3, the tiny 0.0005 ms
    assert histogram.quantile(0.8) == pytest.approx(MIN_VALUE_MS, rel=RELATIVE_ACCURACY)
    assert histogram.quantile(1.0) == 5.0
    assert histogram.mean == pytest.approx(5.0015 / 5)


def test_only_tiny_values_read_back_between_their_min_and_max() -> None:
    histogram = LatencyHistogram.of([0.0007, 0.0002, 0.0005])

    assert histogram.buckets == {}
    assert [histogram.quantile(q) for q in (0.0, 0.5, 1.0)] == [0.0002, 0.0002, 0.0007]


def test_the_rank_of_a_percentile_is_the_decimal_one() -> None:
    # 0.07 * 100 is 7.000000000000001 in floating point; the 7th value is meant, not the 8th.
    histogram = LatencyHistogram.of([float(v) for v in range(1, 101)])

    assert histogram.quantile(0.07) == pytest.approx(7, rel=RELATIVE_ACCURACY)
    assert histogram.quantile(np.float64(0.95)) == pytest.approx(95, rel=RELATIVE_ACCURACY)


def test_an_empty_histogram_has_no_percentiles() -> None:
    histogram = LatencyHistogram()

    assert (histogram.count, histogram.mean, histogram.quantile(0.5)) == (0, None, None)
    assert merged([]) == histogram
    assert LatencyHistogram.from_json(histogram.to_json()) == histogram


def test_the_mean_comes_from_the_sum_not_the_buckets() -> None:
    assert LatencyHistogram.of([1.0, 2.0, 3.0, 100.5]).mean == 26.625


@given(st.lists(st.tuples(with_zeros, st.integers(1, 50)), min_size=1, max_size=50))
def test_adding_a_count_equals_adding_the_value_that_many_times(
    weighted: list[tuple[float, int]],
) -> None:
    at_once, one_by_one = LatencyHistogram(), LatencyHistogram()
    for value, count in weighted:
        at_once.add(value, count)
        for _ in range(count):
            one_by_one.add(value)

    same(at_once, one_by_one)


# -- merging ------------------------------------------------------------------------------


@given(st.lists(with_zeros, max_size=300), st.data())
@settings(max_examples=200, deadline=None)
def test_merging_the_parts_of_a_split_gives_the_histogram_of_the_whole(
    values: list[float], data: st.DataObject
) -> None:
    labels = data.draw(st.lists(st.integers(0, 4), min_size=len(values), max_size=len(values)))
    parts = [
        LatencyHistogram.of(v for v, label in zip(values, labels, strict=True) if label == i)
        for i in range(5)
    ]
    stored = [part.to_json() for part in parts]
    whole = LatencyHistogram.of(values)
    shuffled = data.draw(st.permutations(parts))
    cut = data.draw(st.integers(0, len(parts)))

    same(merged(parts), whole)
    same(merged(shuffled), whole)  # commutative
    same(merged([merged(shuffled[:cut]), merged(shuffled[cut:])]), whole)  # associative
    assert [part.to_json() for part in parts] == stored  # the inputs are left alone


def test_merging_into_a_histogram_adds_counts_bucket_by_bucket() -> None:
    histogram = LatencyHistogram.of([1.0, 0.0])
    histogram.merge(LatencyHistogram.of([1.0, 1.0, 1000.0]))
    histogram.merge(LatencyHistogram())

    assert histogram.to_json() == {
        "a": 0.01,
        "z": 1,
        "b": {"0": 3, "346": 1},
        "sum": 1003.0,
        "min": 0.0,
        "max": 1000.0,
    }


# -- storage ------------------------------------------------------------------------------


def test_bucket_keys_follow_the_documented_formula() -> None:
    # Stored rows hold these keys: a new ddsketch that moved them would corrupt every merge.
    gamma = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
    for value in [0.0013, 0.37, 1.5, 42.0, 980.0, 61_000.0, 3.3e6]:
        (key,) = LatencyHistogram.of([value]).buckets
        assert key == math.ceil(math.log(value) / math.log(gamma))
    assert LatencyHistogram.of([1000.0]).buckets == {346: 1}


@given(st.lists(with_zeros, max_size=200))
def test_the_storage_format_round_trips_exactly(values: list[float]) -> None:
    histogram = LatencyHistogram.of(values)

    for dumped in (json.dumps(histogram.to_json()), orjson.dumps(histogram.to_json())):
        assert LatencyHistogram.from_json(json.loads(dumped)) == histogram


def test_the_storage_format_is_the_documented_one() -> None:
    # The example in the module docstring.
    histogram = LatencyHistogram.of([12.5, 12.5, 0.0, 250.0])

    assert json.dumps(histogram.to_json(), separators=(",", ":")) == (
        '{"a":0.01,"z":1,"b":{"127":2,"277":1},"sum":275.0,"min":0.0,"max":250.0}'
    )


GOOD: dict[str, Any] = {"a": 0.01, "z": 1, "b": {"5": 2}, "sum": 3.0, "min": 0.0, "max": 1.5}


@pytest.mark.parametrize(
    "changes",
    [
        {"a": 0.02},
        {"z": -1},
        {"z": 1.0},
        {"b": {"5": 0}},
        {"b": {"five": 2}},
        {"b": [[5, 2]]},
        {"min": None},
        {"sum": "many"},
        {"z": 0, "b": {}},  # empty, yet with a min and max
    ],
    ids=repr,
)
def test_a_stored_value_that_is_not_a_histogram_is_refused(changes: dict[str, Any]) -> None:
    assert LatencyHistogram.from_json(GOOD).count == 3
    with pytest.raises(ValueError, match="not a latency histogram"):
        LatencyHistogram.from_json(GOOD | changes)


@pytest.mark.parametrize("missing", sorted(GOOD))
def test_a_stored_value_with_a_field_missing_is_refused(missing: str) -> None:
    with pytest.raises(ValueError, match="not a latency histogram"):
        LatencyHistogram.from_json({k: v for k, v in GOOD.items() if k != missing})


# -- invalid input ------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1.0, -1e-9, math.nan, math.inf, -math.inf])
def test_negative_nan_and_infinite_latencies_are_refused(value: float) -> None:
    histogram = LatencyHistogram.of([3.0])
    with pytest.raises(ValueError, match="finite and non-negative"):
        histogram.add(value)
    assert histogram == LatencyHistogram.of([3.0])


@pytest.mark.parametrize("count", [0, -2])
def test_a_count_below_one_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match="count must be at least 1"):
        LatencyHistogram().add(1.0, count)


@pytest.mark.parametrize("q", [-0.01, 1.01, math.nan])
def test_a_quantile_outside_zero_to_one_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        LatencyHistogram.of([1.0]).quantile(q)
