"""Change points of a trend series, fast enough for a request on 30 days of hourly buckets.

Up to MAX_HOURLY_POINTS hourly buckets (10 days), the series goes to `find_change_points` as
it is, with its hour-of-day profile removed there. Longer hourly series are searched day by
day (the median of each UTC day's hours: a whole day holds every hour once, so the daily
profile cancels), which cuts the permutation test's work by a factor of 24^2, and each change
found is then placed at the hour: the split within a day of it that best divides the five
days either side into two levels (hour-of-day profile removed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from flowscope.analytics.changepoints import ChangePoint, find_change_points, remove_daily_profile

MIN_HOURS = 5
"""Hourly buckets with data on each side of a change in a series of up to 10 days."""
MIN_DAYS = 3
"""Days on each side of a change in a daily series, or in a long hourly one searched by day
(a 3-day regression at the end of a 30-day window is found; on daily noise of 15% the search
flagged 0.7% of 300 stable 30-day series)."""
MAX_HOURLY_POINTS = 240
_REACH = 5 * 24  # hours of data either side of a change used to place it


def change_points(
    series: Sequence[float], hours: Sequence[int] | None
) -> list[tuple[int, ChangePoint]]:
    """(index of the first bucket of the new level, change point) for each change found."""
    least = MIN_DAYS if hours is None else MIN_HOURS
    if sum(1 for v in series if not math.isnan(v)) < 2 * least:
        return []  # too few buckets with data to tell a change from noise
    if hours is None or len(series) <= MAX_HOURLY_POINTS:
        found = find_change_points(series, min_segment=least, hour_of_day=hours)
        return [(point.index, point) for point in found]
    values = np.asarray(series, dtype=np.float64)
    first_day = (24 - hours[0]) % 24  # index of the first bucket at 00:00 UTC
    day_starts = list(range(first_day, len(values) - 23, 24))
    daily = [_median(values[start : start + 24]) for start in day_starts]
    found = find_change_points(daily, min_segment=MIN_DAYS)
    if not found:
        return []
    adjusted = remove_daily_profile(values, np.asarray(hours))
    return [(_hour_of_change(adjusted, day_starts[point.index]), point) for point in found]


def _median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if len(finite) else math.nan


def _hour_of_change(values: np.ndarray, day_start: int) -> int:
    """The hour within a day of `day_start` that best splits the days around it in two levels:
    the split maximising the standardised difference of means (the likelihood estimate of one
    shift in level), over the data within _REACH hours either side."""
    low, high = max(0, day_start - _REACH), min(len(values), day_start + _REACH)
    window = values[low:high]
    finite = np.isfinite(window)
    data = np.where(finite, window, 0.0)
    counts, sums = np.cumsum(finite), np.cumsum(data)
    total_n, total_sum = counts[-1], sums[-1]
    best, best_score = day_start, -1.0
    for split in range(max(low + 1, day_start - 23), min(high - 1, day_start + 23) + 1):
        m = counts[split - low - 1]
        k = total_n - m
        if m < 2 or k < 2:
            continue
        left = sums[split - low - 1] / m
        right = (total_sum - sums[split - low - 1]) / k
        score = abs(right - left) * math.sqrt(m * k / total_n)
        if score > best_score:
            best, best_score = split, score
    return best
