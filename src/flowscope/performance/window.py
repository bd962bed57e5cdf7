"""Analysis windows: `days` back from now, or explicit `start`/`end`, on whole hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flowscope.limits import MAX_WINDOW_DAYS
from flowscope.schemas.performance import WindowPublic
from flowscope.timeutil import DAY_US, HOUR_US, OUT_OF_RANGE, from_us, in_range, now_us, to_us

MAX_DAYS = MAX_WINDOW_DAYS


class BadWindow(ValueError):
    """The window asked for is invalid; `field` names the query parameter at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Window:
    """[start_us, end_us) on whole hours (the rollups' resolution)."""

    start_us: int
    end_us: int

    @property
    def hours(self) -> int:
        return (self.end_us - self.start_us) // HOUR_US

    def previous(self) -> Window:
        """The window of the same length just before this one."""
        return Window(2 * self.start_us - self.end_us, self.start_us)

    def public(self) -> WindowPublic:
        return WindowPublic(start=from_us(self.start_us), end=from_us(self.end_us))


def make_window(
    days: int | None,
    start: datetime | None,
    end: datetime | None,
    *,
    default_days: int,
    now: int | None = None,
) -> Window:
    """`days` back from `end` (default now), or [start, end); rounded out to whole hours."""
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise BadWindow("days", f"days must be between 1 and {MAX_DAYS}, got {days}")
    if days is not None and start is not None:
        raise BadWindow("days", "give either days or start (with an optional end), not both")
    for field, moment in (("start", start), ("end", end)):
        if moment is not None and not in_range(moment):
            raise BadWindow(field, f"{field} {OUT_OF_RANGE}")
    end_us = _ceil_hour(now_us() if now is None else now) if end is None else _ceil_hour(to_us(end))
    if start is None:
        return Window(end_us - (days or default_days) * DAY_US, end_us)
    start_us = to_us(start) // HOUR_US * HOUR_US
    if start_us >= end_us:
        raise BadWindow("start", "start must be before end")
    if end_us - start_us > MAX_DAYS * DAY_US:
        raise BadWindow("start", f"a window spans at most {MAX_DAYS} days")
    return Window(start_us, end_us)


def _ceil_hour(us: int) -> int:
    return -(-us // HOUR_US) * HOUR_US
