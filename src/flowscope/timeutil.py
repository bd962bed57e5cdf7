"""Conversions between aware datetimes and the integer epoch microseconds stored in tables."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(value: datetime) -> int:
    """Exact microseconds since the epoch of an aware (or naive = UTC) datetime."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def maybe_from_us(micros: int | None) -> datetime | None:
    return None if micros is None else from_us(micros)


def now_us() -> int:
    return time.time_ns() // 1_000
