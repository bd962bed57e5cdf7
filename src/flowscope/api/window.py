"""The analysis window of every route that reads figures over time: `days` back from now, or
`start` (and `end`), on whole hours, by flowscope.performance.window's one rule; a bad
combination is a 422 naming the parameter. Pages use the same rule (web/window.py)."""

# Annotations are evaluated at definition (no `from __future__ import annotations`): each
# dependency `_window_of` makes closes over its default, which FastAPI reads from them.

from collections.abc import Callable
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


def _window_of(default_days: int) -> Callable[..., Window]:
    """The dependency of a window `default_days` long unless the query says otherwise."""

    def window(
        days: Annotated[
            int | None,
            Query(
                ge=1,
                le=MAX_DAYS,
                description=f"Window: this many days back from now (default {default_days}).",
            ),
        ] = None,
        start: Start = None,
        end: End = None,
    ) -> Window:
        try:
            return make_window(days, start, end, default_days=default_days)
        except BadWindow as exc:
            raise unprocessable(("query", exc.field), str(exc)) from None

    return window


WeekWindow = Annotated[Window, Depends(_window_of(7))]
"""`days` (default 7) or `start`/`end`, as a Window; 422 naming the parameter."""
MonthWindow = Annotated[Window, Depends(_window_of(30))]
"""The same with 30 days by default (trends)."""
