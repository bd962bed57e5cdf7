"""The window selector: `?window=24h|7d|30d` or `?window=custom&start=...&end=...`, kept in
every link so that views can be shared."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query

from flowscope.performance.window import BadWindow, Window, make_window
from flowscope.timeutil import DAY_US, HOUR_US

PRESETS = {"24h": 1, "7d": 7, "30d": 30}
DEFAULT = "7d"


@dataclass(frozen=True, slots=True)
class WindowChoice:
    name: str  # a preset or "custom"
    window: Window
    start: str = ""  # custom bounds as given (YYYY-MM-DD or ISO), for the form
    end: str = ""
    error: str = ""  # a bad custom window falls back to the default, saying why

    @property
    def query(self) -> str:
        """The query string that selects this window again."""
        if self.name != "custom":
            return urlencode({"window": self.name})
        return urlencode({"window": "custom", "start": self.start, "end": self.end})

    @property
    def bucket_us(self) -> int:
        """Chart resolution: hours up to two days, days beyond."""
        return HOUR_US if self.window.end_us - self.window.start_us <= 2 * DAY_US else DAY_US

    @property
    def granularity(self) -> str:
        return "hour" if self.bucket_us == HOUR_US else "day"


def choose_window(
    window: Annotated[str, Query()] = DEFAULT,
    start: Annotated[str, Query()] = "",
    end: Annotated[str, Query()] = "",
) -> WindowChoice:
    if window == "custom":
        try:
            return WindowChoice(
                "custom",
                make_window(
                    None,
                    _parse(start, "start"),
                    _parse(end, "end") if end else None,
                    default_days=7,
                ),
                start,
                end,
            )
        except BadWindow as exc:
            fallback = make_window(PRESETS[DEFAULT], None, None, default_days=7)
            return WindowChoice(DEFAULT, fallback, start, end, error=str(exc))
    name = window if window in PRESETS else DEFAULT
    return WindowChoice(name, make_window(PRESETS[name], None, None, default_days=7))


def _parse(text: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadWindow(field, f"{field} must be a date like 2026-11-01") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
