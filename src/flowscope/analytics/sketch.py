"""Mergeable latency histograms with bounded relative error (DDSketch's logarithmic buckets).

A duration v >= MIN_VALUE_MS goes to bucket key k = ceil(log(v) / log(g)), with
g = (1 + a) / (1 - a) and a = RELATIVE_ACCURACY = 0.01 (g ~ 1.0202); the bucket stands for
2 * g**k / (1 + g), within 1% of every value in it. Shorter durations (below 1 microsecond, the
resolution of stored times) are counted as zeros. Every histogram shares one mapping, so
merging adds counts key by key: associative, commutative and lossless, however many hourly
rollups a query merges.

Storage format (`to_json`, a JSON object stored in database rows), here for 0, 12.5, 12.5 and
250 ms:

    {"a": 0.01, "z": 1, "b": {"127": 2, "277": 1}, "sum": 275.0, "min": 0.0, "max": 250.0}

`a` is the relative accuracy the keys were made with (a different one is refused), `z` the
number of zeros, `b` the count in each non-empty bucket by key (a decimal string, in increasing
order), `sum`, `min` and `max` the sum, minimum and maximum in milliseconds (`min` and `max` are
null when empty; `sum` is a float, so merge order can change its last digits). The total count
is `z` plus the bucket counts.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ddsketch.mapping import LogarithmicMapping

RELATIVE_ACCURACY = 0.01
MIN_VALUE_MS = 0.001
"""Durations below this (1 microsecond) are zeros: a logarithmic bucket cannot hold 0."""

_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)

ZERO_KEY = "z"
"""In a count map (`from_counts`), the key of durations under MIN_VALUE_MS."""


def bucket_key(value_ms: float) -> int | None:
    """The bucket key of a duration, or None for one under MIN_VALUE_MS (a zero)."""
    return None if value_ms < MIN_VALUE_MS else _MAPPING.key(value_ms)


def bucket_value(key: int) -> float:
    """The duration a bucket stands for (within RELATIVE_ACCURACY of all durations in it)."""
    return float(_MAPPING.value(key))


@dataclass(slots=True)
class LatencyHistogram:
    """Counts of durations (ms) by logarithmic bucket, plus their count, sum, min and max.

    Mutable so that a rollup can add values one by one; build with `of`, `add`, `merge`,
    `merged` or `from_json`.

    >>> h = LatencyHistogram.of([10.0, 20.0, 30.0, 40.0])
    >>> h.count, h.mean, round(h.quantile(0.5), 1), h.quantile(1.0)
    (4, 25.0, 19.9, 40.0)
    """

    buckets: dict[int, int] = field(init=False, default_factory=dict)
    zeros: int = field(init=False, default=0)
    count: int = field(init=False, default=0)
    sum_ms: float = field(init=False, default=0.0)
    min_ms: float | None = field(init=False, default=None)
    max_ms: float | None = field(init=False, default=None)

    @classmethod
    def of(cls, values_ms: Iterable[float]) -> LatencyHistogram:
        """The histogram of `values_ms`."""
        histogram = cls()
        for value in values_ms:
            histogram.add(value)
        return histogram

    def add(self, value_ms: float, count: int = 1) -> None:
        """Record `count` durations of `value_ms` milliseconds."""
        if not (math.isfinite(value_ms) and 0 <= value_ms <= _MAPPING.max_possible):
            raise ValueError(f"a latency must be finite and non-negative, got {value_ms!r} ms")
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count!r}")
        if value_ms < MIN_VALUE_MS:
            self.zeros += count
        else:
            key = _MAPPING.key(value_ms)
            self.buckets[key] = self.buckets.get(key, 0) + count
        self._include(count, value_ms * count, value_ms, value_ms)

    def merge(self, other: LatencyHistogram) -> None:
        """Add every count of `other` to this histogram."""
        if other.min_ms is None or other.max_ms is None:
            return  # empty
        for key, n in other.buckets.items():
            self.buckets[key] = self.buckets.get(key, 0) + n
        self.zeros += other.zeros
        self._include(other.count, other.sum_ms, other.min_ms, other.max_ms)

    def _include(self, count: int, sum_ms: float, min_ms: float, max_ms: float) -> None:
        self.count += count
        self.sum_ms += sum_ms
        self.min_ms = min_ms if self.min_ms is None else min(self.min_ms, min_ms)
        self.max_ms = max_ms if self.max_ms is None else max(self.max_ms, max_ms)

    @property
    def mean(self) -> float | None:
        """The mean duration (from the sum, not the buckets), or None when empty."""
        return self.sum_ms / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The duration at nearest rank ceil(q * count), within 1%; None when empty.

        `q` is read as the decimal it is written as: for 100 values, q = 0.07 is rank 7
        (0.07 * 100 is 7.000000000000001 in floating point). Ranks 1 and `count` are the exact
        min and max; zeros read as 0 (clamped to the min).
        """
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """`quantile(q)` for each of `qs`, walking the buckets once."""
        for q in qs:
            if not 0 <= q <= 1:
                raise ValueError(f"q must be between 0 and 1, got {q!r}")
        low, high = self.min_ms, self.max_ms
        if low is None or high is None:
            return [None] * len(qs)
        ranks = [max(1, _ceil_times(q, self.count)) for q in qs]
        found: list[float | None] = [None] * len(qs)
        keys = sorted(self.buckets)
        seen, next_key = self.zeros, 0
        for i in sorted(range(len(qs)), key=ranks.__getitem__):
            rank = ranks[i]
            if rank == 1:
                found[i] = low
            elif rank == self.count:
                found[i] = high
            elif rank <= self.zeros:
                found[i] = low  # below MIN_VALUE_MS: 0 clamped to the min
            else:
                while seen < rank:
                    seen += self.buckets[keys[next_key]]
                    next_key += 1
                found[i] = min(max(_MAPPING.value(keys[next_key - 1]), low), high)
        return found

    @classmethod
    def from_counts(
        cls,
        counts: Mapping[str, int],
        *,
        sum_ms: float,
        min_ms: float | None = None,
        max_ms: float | None = None,
    ) -> LatencyHistogram:
        """A histogram from counts by bucket key (ZERO_KEY for zeros), as rollups store them.

        Rollups can take values back out but not a minimum or maximum, so `min_ms`/`max_ms` are
        used only when they fall in the lowest/highest non-empty bucket; otherwise that bucket's
        value stands in (within 1%). Keys with a count of 0 or less are ignored.
        """
        histogram = cls()
        histogram.buckets = {int(k): n for k, n in counts.items() if n > 0 and k != ZERO_KEY}
        histogram.zeros = max(0, counts.get(ZERO_KEY, 0))
        histogram.count = histogram.zeros + sum(histogram.buckets.values())
        histogram.sum_ms = sum_ms
        if not histogram.count:
            return histogram
        low = None if histogram.zeros else min(histogram.buckets)
        high = max(histogram.buckets) if histogram.buckets else None
        histogram.min_ms = (
            min_ms
            if min_ms is not None and bucket_key(min_ms) == low
            else (0.0 if low is None else bucket_value(low))
        )
        histogram.max_ms = (
            max_ms
            if max_ms is not None and bucket_key(max_ms) == high
            else (0.0 if high is None else bucket_value(high))
        )
        return histogram

    def to_json(self) -> dict[str, Any]:
        """The storage format described in the module docstring."""
        return {
            "a": RELATIVE_ACCURACY,
            "z": self.zeros,
            "b": {str(key): self.buckets[key] for key in sorted(self.buckets)},
            "sum": self.sum_ms,
            "min": self.min_ms,
            "max": self.max_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LatencyHistogram:
        """Read `to_json`'s format back; ValueError when it is not a valid histogram."""
        try:
            if data["a"] != RELATIVE_ACCURACY:
                raise ValueError(f"made with relative accuracy {data['a']!r}")
            histogram = cls()
            histogram.zeros = _count(data["z"], minimum=0)
            histogram.buckets = {int(k): _count(n, minimum=1) for k, n in data["b"].items()}
            histogram.count = histogram.zeros + sum(histogram.buckets.values())
            histogram.sum_ms = float(data["sum"])
            if histogram.count:
                histogram.min_ms, histogram.max_ms = float(data["min"]), float(data["max"])
            elif data["min"] is not None or data["max"] is not None:
                raise ValueError("an empty histogram has no min or max")
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise ValueError(f"not a latency histogram: {error}") from error
        return histogram


@functools.lru_cache(maxsize=256)
def _decimal(q: float) -> tuple[int, int]:
    """q as the decimal it is written as (repr), exactly: (numerator, denominator)."""
    exact = Fraction(repr(float(q)))
    return exact.numerator, exact.denominator


def _ceil_times(q: float, count: int) -> int:
    """ceil(q * count) in exact integer arithmetic, q read as its decimal."""
    numerator, denominator = _decimal(q)
    return -(-numerator * count // denominator)


def merged(histograms: Iterable[LatencyHistogram]) -> LatencyHistogram:
    """A new histogram holding the counts of all `histograms` (empty if there are none)."""
    total = LatencyHistogram()
    for histogram in histograms:
        total.merge(histogram)
    return total


def _count(value: Any, *, minimum: int) -> int:
    if type(value) is not int or value < minimum:
        raise ValueError(f"bad count {value!r}")
    return value
