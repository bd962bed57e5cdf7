"""Conversions between aware datetimes and the integer epoch microseconds stored in tables."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NAIVE_EPOCH = datetime(1970, 1, 1)
ONE_US = timedelta(microseconds=1)


def to_us(value: datetime) -> int:
    """Exact microseconds since the epoch of an aware (or naive = UTC) datetime."""
    if value.tzinfo is None:
        return (value - NAIVE_EPOCH) // ONE_US
    return (value - EPOCH) // ONE_US


def from_us(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def maybe_from_us(micros: int | None) -> datetime | None:
    return None if micros is None else from_us(micros)


def now_us() -> int:
    return time.time_ns() // 1_000
