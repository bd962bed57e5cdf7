"""Conversions between aware datetimes and the integer epoch microseconds stored in tables."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from flowscope.limits import EARLIEST_YEAR, LATEST_YEAR

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = EPOCH.toordinal()

SECOND_US = 1_000_000
HOUR_US = 3_600 * SECOND_US
"""The rollups' finest bucket, and the unit of every analysis window."""
DAY_US = 24 * HOUR_US


def to_us(value: datetime) -> int:
    """Exact microseconds since the epoch of an aware (or naive = UTC) datetime.

    Plain integer arithmetic over the fields: on the ingestion hot path this is several
    times cheaper than subtracting aware datetimes, which asks the tzinfo for its offset
    twice through Python. Fixed-offset zones (pydantic's, `datetime.timezone`) tell their
    offset without a datetime; zone rules such as zoneinfo are asked with one.
    """
    micros = (
        (value.toordinal() - _EPOCH_ORDINAL) * 86_400
        + value.hour * 3_600
        + value.minute * 60
        + value.second
    ) * 1_000_000 + value.microsecond
    zone = value.tzinfo
    if zone is None:
        return micros
    offset = zone.utcoffset(None)
    if offset is None:
        offset = value.utcoffset()
        if offset is None:
            return micros
    return micros - (offset.days * 86_400 + offset.seconds) * 1_000_000 - offset.microseconds


EARLIEST_US = to_us(datetime(EARLIEST_YEAR, 1, 1, tzinfo=UTC))
LATEST_US = to_us(datetime(LATEST_YEAR + 1, 1, 1, tzinfo=UTC))
"""Stored times are in [EARLIEST_US, LATEST_US): flowscope.limits says why."""
OUT_OF_RANGE = f"must be between {EARLIEST_YEAR}-01-01 and {LATEST_YEAR}-12-31 (UTC)"


def in_range(moment: datetime) -> bool:
    """Whether a time may be stored (and read back as a date): one comparison of its year,
    and the exact check only in the first and last years (a zone can move it across)."""
    if EARLIEST_YEAR < moment.year < LATEST_YEAR:
        return True
    return EARLIEST_US <= to_us(moment) < LATEST_US


def from_us(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def maybe_from_us(micros: int | None) -> datetime | None:
    return None if micros is None else from_us(micros)


def now_us() -> int:
    return time.time_ns() // 1_000
