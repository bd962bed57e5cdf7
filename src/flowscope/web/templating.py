"""The Jinja2 environment of the dashboard, with the number and time filters every page
uses (one place decides how a duration, a rate or an amount reads)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

NONE = "\u2013"  # an en dash where there is no value

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def duration(ms: float | None) -> str:
    if ms is None:
        return NONE
    if ms == 0:
        return "0 ms"
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    return f"{ms / 60_000:.1f} min"


def percent(value: float | None, digits: int = 1) -> str:
    return NONE if value is None else f"{value * 100:.{digits}f}%"


def money(value: float | None, currency: str = "USD") -> str:
    if value is None:
        return NONE
    symbol = "$" if currency == "USD" else f"{currency} "
    if value and abs(value) < 0.01:
        return f"{symbol}{value:.5f}"
    return f"{symbol}{value:,.2f}"


def integer(value: float | None) -> str:
    return NONE if value is None else f"{value:,.0f}"


def change(value: float | None) -> str:
    """A change in percent, signed: +12.5%."""
    return NONE if value is None else f"{value:+.1f}%"


def when(moment: datetime | None) -> Markup:
    """A <time> element: UTC in the page, turned into the viewer's zone by app.js (UTC on
    hover)."""
    if moment is None:
        return Markup(NONE)
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    iso = utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup(f'<time datetime="{iso}" title="{escape(text)}">{escape(text)}</time>')


templates.env.filters.update(
    duration=duration, percent=percent, money=money, integer=integer, change=change, when=when
)
