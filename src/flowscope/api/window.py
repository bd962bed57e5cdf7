"""The analysis window of every route that reads figures over time: `days` back from now, or
`start` (and `end`), on whole hours, by flowscope.performance.window's one rule; a bad
combination is a 422 naming the parameter. Pages use the same rule (web/window.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query

from flowscope.api.errors import unprocessable
from flowscope.performance.window import MAX_DAYS, BadWindow, Window, make_window

Start = Annotated[
    datetime | None, Query(description="Window start instead of `days` (rounded down to the hour).")
]
End = Annotated[
    datetime | None, Query(description="Window end (default now; rounded up to the hour).")
]


def _window(days: int | None, start: datetime | None, end: datetime | None, default: int) -> Window:
    try:
        return make_window(days, start, end, default_days=default)
    except BadWindow as exc:
        raise unprocessable(("query", exc.field), str(exc)) from None


def _week(
    days: Annotated[
        int | None,
        Query(ge=1, le=MAX_DAYS, description="Window: this many days back from now (default 7)."),
    ] = None,
    start: Start = None,
    end: End = None,
) -> Window:
    return _window(days, start, end, 7)


def _month(
    days: Annotated[
        int | None,
        Query(ge=1, le=MAX_DAYS, description="Window: this many days back (default 30)."),
    ] = None,
    start: Start = None,
    end: End = None,
) -> Window:
    return _window(days, start, end, 30)


WeekWindow = Annotated[Window, Depends(_week)]
"""`days` (default 7) or `start`/`end`, as a Window; 422 naming the parameter."""
MonthWindow = Annotated[Window, Depends(_month)]
"""The same with 30 days by default (trends)."""
