"""Epoch microseconds: exact for every offset and zone, round-tripping through from_us."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from flowscope.schemas.runs import RUN_CREATE
from flowscope.timeutil import EPOCH, from_us, to_us

ONE_US = timedelta(microseconds=1)
moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1))
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
zones = st.sampled_from(
    ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
)


def reference(value: datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return (aware - EPOCH) // ONE_US


@given(moments)
def test_naive_is_utc(value: datetime) -> None:
    assert to_us(value) == reference(value)
    assert from_us(to_us(value)) == value.replace(tzinfo=UTC)


@given(moments, offsets)
def test_fixed_offsets(value: datetime, zone: timezone) -> None:
    aware = value.replace(tzinfo=zone)
    assert to_us(aware) == reference(aware)


@given(moments, zones)
def test_zone_rules(value: datetime, zone: str) -> None:
    aware = value.replace(tzinfo=ZoneInfo(zone))
    assert to_us(aware) == reference(aware)


@given(moments, st.integers(-14 * 60, 14 * 60))
def test_timestamps_parsed_by_the_wire_schema(value: datetime, minutes: int) -> None:
    text = value.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat()
    parsed = RUN_CREATE.validate_python(
        {"id": "r", "app_id": "a", "workflow_id": "w", "status": "running", "started_at": text}
    )["started_at"]
    assert to_us(parsed) == reference(datetime.fromisoformat(text))
