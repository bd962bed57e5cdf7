"""Advisor thresholds: defaults, overrides, and clear refusals (also at server start)."""

from __future__ import annotations

from typing import Any

import pytest

from flowscope.advisor.thresholds import ThresholdError, Thresholds, make_thresholds
from flowscope.config import Settings
from flowscope.server import create_app


def test_overrides_apply_over_defaults() -> None:
    t = make_thresholds({"min_executions": 50, "error_rate": 0.02})
    assert (t.min_executions, t.error_rate) == (50, 0.02)
    assert t.tail_ratio == Thresholds().tail_ratio
    assert make_thresholds(None) == Thresholds()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"min_executoins": 5}, "unknown advisor threshold 'min_executoins'"),
        ({"error_rate": "high"}, "'error_rate' must be a number"),
        ({"error_rate": True}, "'error_rate' must be a number"),
        ({"min_executions": 2.5}, "'min_executions' must be a whole number"),
        ({"tail_ratio": -1}, "'tail_ratio' must not be negative"),
    ],
)
def test_bad_thresholds_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ThresholdError, match=message):
        make_thresholds(overrides)


def test_a_bad_setting_stops_the_server_at_start() -> None:
    with pytest.raises(ThresholdError, match="unknown advisor threshold 'nope'"):
        create_app(Settings(database_url="sqlite://", advisor_thresholds={"nope": 1}))
