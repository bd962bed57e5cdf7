"""Reading values out of decoded span records (otlp_decode): the record's shape, typed
attribute readers and the time conversion, shared by the generic and the Dify mappings."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from flowscope.limits import MAX_COUNT, MAX_ID

Span = Mapping[str, Any]
"""A decoded span: t (trace id), s (span id), p (parent id), name, start and end (ns), a
(kept attributes), r (resource attributes), and err, msg, h, remote, sc (instrumentation
scope) when set."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def time_of(nanoseconds: int) -> datetime:
    """The instant to the nearest microsecond: exporters that build nanoseconds from float
    seconds (Dify's `int(dt.timestamp() * 1e9)`) land a few hundred ns off."""
    return _EPOCH + timedelta(microseconds=(nanoseconds + 500) // 1000)


def first_int(attributes: Mapping[str, Any], keys: Sequence[str]) -> int | None:
    """The first non-negative integer among the keys (numbers and numeric strings)."""
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            number = count(value)
            if number is not None:
                return number
    return None


def count(value: Any) -> int | None:
    """A non-negative whole number (of a number or a numeric string) up to MAX_COUNT, or
    None: an attribute beyond what a count can be is not one."""
    number = amount(value)
    return None if number is None or number > MAX_COUNT else int(number)


def first_text(attributes: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        raw = attributes.get(key)
        if raw is not None:
            value = text(raw)
            if value:
                return value
    return None


def text(value: Any) -> str | None:
    """Non-empty text cut to an id's length; None for None, booleans and blanks."""
    if value is None or isinstance(value, bool):
        return None
    stripped = str(value).strip()
    return stripped[:MAX_ID] if stripped else None


def amount(value: Any) -> float | None:
    """A finite non-negative number, or None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None
