"""Change points of trend series: long hourly series are searched by day, then placed at the
hour."""

from __future__ import annotations

import math
import random

import pytest

from flowscope.performance.regressions import MAX_HOURLY_POINTS, change_points


def hourly(
    days: int, *, step_at: int | None, factor: float = 1.3, seed: int = 5
) -> tuple[list[float], list[int]]:
    """Latency-like hourly values: a daily profile (busy afternoons), lognormal noise, and a
    step up by `factor` from index `step_at`; the series starts at 07:00 UTC."""
    rng = random.Random(seed)
    hours = [(7 + i) % 24 for i in range(days * 24)]
    values = []
    for i, hour in enumerate(hours):
        profile = 1 + 0.4 * math.sin((hour - 9) / 24 * 2 * math.pi)
        level = factor if step_at is not None and i >= step_at else 1.0
        values.append(1000 * profile * level * math.exp(0.1 * rng.gauss(0, 1)))
    return values, hours


@pytest.mark.parametrize("step_at", [300, 517, 600])
def test_a_step_in_a_long_hourly_series_is_found_at_its_hour(step_at: int) -> None:
    values, hours = hourly(30, step_at=step_at)
    assert len(values) > MAX_HOURLY_POINTS
    found = change_points(values, hours)
    assert len(found) == 1
    index, point = found[0]
    assert abs(index - step_at) <= 2
    assert point.change_pct == pytest.approx(30, abs=6)
    assert point.confidence >= 0.99


def test_a_stable_long_hourly_series_has_none() -> None:
    for seed in range(5):
        values, hours = hourly(30, step_at=None, seed=seed)
        assert change_points(values, hours) == []


def test_short_series_and_empty_buckets() -> None:
    values, hours = hourly(8, step_at=100)  # 192 hourly points: searched hour by hour
    [(index, _)] = change_points(values, hours)
    assert abs(index - 100) <= 2
    # Empty buckets are NaN; too few buckets with data give nothing rather than noise.
    assert change_points([math.nan] * 700 + [1.0] * 9, [h % 24 for h in range(709)]) == []
    gappy = [v if i % 3 else math.nan for i, v in enumerate(hourly(30, step_at=400)[0])]
    [(index, _)] = change_points(gappy, hourly(30, step_at=None)[1])
    assert abs(index - 400) <= 3


def test_daily_series() -> None:
    daily = [100.0 + (i % 3) for i in range(12)] + [150.0 + (i % 3) for i in range(12)]
    [(index, point)] = change_points(daily, None)
    assert index == 12 and point.change_pct == pytest.approx(49.5, abs=1)
