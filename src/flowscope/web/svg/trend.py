"""A trend chart: series of values by time bucket as lines over labelled axes, gaps where a
bucket has no value, and vertical markers where regressions start.

Points sit in the middle of their bucket and a marker on the start of its bucket, so a
change that starts with a bucket is drawn just before that bucket's point. Times are UTC.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 480, 230
LEFT, RIGHT, TOP, BOTTOM = 58, 12, 20, 50  # room for value labels, marker numbers, times
MAX_TIME_LABELS = 6


@dataclass(frozen=True, slots=True)
class Line:
    """One series: `name` for the legend and text alternative, `css` its class (colour)."""

    name: str
    values: Sequence[float | None]
    css: str


@dataclass(frozen=True, slots=True)
class Marker:
    """A vertical mark at the start of bucket `index`, numbered `label`, described by `text`."""

    index: int
    label: str
    text: str


@dataclass(frozen=True, slots=True)
class Axis:
    """How values read: ticks in `unit` ("ms" or a currency code), and the time resolution."""

    unit: str
    hourly: bool


def trend_chart(
    starts: Sequence[datetime],
    lines: Sequence[Line],
    *,
    chart_id: str,
    title: str,
    axis: Axis,
    markers: Sequence[Marker] = (),
) -> Markup:
    """An inline SVG (role="img") titled `title`, with a generated description of each line
    (first and last value, range, empty buckets) and of the markers."""
    known = [v for line in lines for v in line.values if v is not None]
    top, step = _scale(max(known, default=0.0))
    tick = _tick_format(axis.unit, top, step)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(starts), 1)

    def x_mid(i: int) -> float:
        return LEFT + (i + 0.5) * slot

    def y_of(value: float) -> float:
        return TOP + plot_h - value / top * plot_h

    description = _describe(starts, lines, markers, axis, tick)
    parts = [
        f'<svg class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]
    # Value axis: gridlines with labelled ticks, from 0.
    parts.append('<g class="grid">')
    for k in range(round(top / step) + 1):
        value = k * step
        y = y_of(value)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(tick(value))}</text>"
        )
    parts.append("</g>")
    # Time axis: a few bucket labels, and what the buckets are.
    every = max(1, math.ceil(len(starts) / MAX_TIME_LABELS))
    parts.append('<g class="times">')
    for i in range(0, len(starts), every):
        parts.append(
            f'<text class="tick" x="{x_mid(i):.1f}" y="{TOP + plot_h + 20}" text-anchor="middle">'
            f"{escape(_time_label(starts, i, axis.hourly))}</text>"
        )
    unit = "Hour" if axis.hourly else "Day"
    parts.append(
        f'<text class="axis-title" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" '
        f'text-anchor="middle">{unit} (UTC)</text></g>'
    )
    for marker in markers:
        x = LEFT + marker.index * slot
        parts.append(
            f'<g class="marker"><title>{escape(marker.text)}</title>'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP - 2}" y2="{TOP + plot_h}"/>'
            f'<text x="{x:.1f}" y="{TOP - 6}" text-anchor="middle">'
            f"{escape(marker.label)}</text></g>"
        )
    for line in lines:
        parts.append(f'<g class="series {escape(line.css)}">')
        for segment in _segments(line.values):
            points = " ".join(f"{x_mid(i):.1f},{y_of(v):.1f}" for i, v in segment)
            if len(segment) > 1:
                parts.append(f'<polyline points="{points}"/>')
        for i, v in enumerate(line.values):
            if v is not None:
                label = f"{_time_label(starts, i, axis.hourly, full=True)}: {line.name} {tick(v)}"
                parts.append(
                    f'<circle cx="{x_mid(i):.1f}" cy="{y_of(v):.1f}" r="2.5">'
                    f"<title>{escape(label)}</title></circle>"
                )
        parts.append("</g>")
    parts.append(
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" '
        f'y2="{TOP + plot_h}"/></svg>'
    )
    return Markup("".join(parts))


def _segments(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Runs of consecutive known values: a bucket without a value is a gap, never a zero."""
    segments: list[list[tuple[int, float]]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            if segments[-1]:
                segments.append([])
        else:
            segments[-1].append((i, value))
    return [s for s in segments if s]


def _scale(highest: float) -> tuple[float, float]:
    """A round top of the value axis and the step between its ticks (3 to 5 ticks)."""
    if highest <= 0:
        return 1.0, 0.25
    raw = highest / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return step * math.ceil(highest / step * (1 + 1e-9)), step


def _tick_format(unit: str, top: float, step: float) -> Callable[[float], str]:
    """Value labels with just the decimals the step needs, and the unit (seconds from 1 s)."""
    if unit == "ms":
        if top >= 1000:
            return lambda v: f"{_decimals(v / 1000, step / 1000)} s"
        return lambda v: f"{_decimals(v, step)} ms"
    symbol = "$" if unit == "USD" else f"{unit} "
    return lambda v: f"{symbol}{_decimals(v, min(step, 0.01))}"  # cents at least


def _decimals(value: float, step: float) -> str:
    """`value` with as many decimals as ticks `step` apart need (2.5 needs one, 0.02 two)."""
    places = max(0, -math.floor(math.log10(step)))
    while places < 12 and abs(step * 10**places - round(step * 10**places)) > 1e-6:
        places += 1
    return f"{value:,.{places}f}"


def _time_label(starts: Sequence[datetime], i: int, hourly: bool, *, full: bool = False) -> str:
    moment = starts[i]
    if not hourly:
        return moment.strftime("%Y-%m-%d" if full else "%b %d")
    if full:
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%b %d") if moment.hour == 0 or i == 0 else moment.strftime("%H:%M")


def _describe(
    starts: Sequence[datetime],
    lines: Sequence[Line],
    markers: Sequence[Marker],
    axis: Axis,
    tick: Callable[[float], str],
) -> str:
    if not starts:
        return "No buckets in the window."
    unit = "hour" if axis.hourly else "day"
    first = _time_label(starts, 0, axis.hourly, full=True)
    last = _time_label(starts, len(starts) - 1, axis.hourly, full=True)
    parts = [f"{_count(len(starts), unit)} from {first} to {last} (UTC)."]
    for line in lines:
        known = [v for v in line.values if v is not None]
        if not known:
            parts.append(f"{line.name}: no values.")
            continue
        empty = len(line.values) - len(known)
        parts.append(
            f"{line.name}: {tick(known[0])} at first, {tick(known[-1])} at last, "
            f"from {tick(min(known))} to {tick(max(known))}"
            + (f"; {_count(empty, unit)} without runs." if empty else ".")
        )
    for marker in markers:
        parts.append(f"Marker {marker.label}: {marker.text}.")
    return " ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
