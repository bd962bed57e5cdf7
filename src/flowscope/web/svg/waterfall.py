"""A waterfall (Gantt) of one run: a row per node execution on an axis of ms from the run's
start, bars coloured by status (run.css), the critical path marked by colour and a star."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

ROW = 18  # px per row: a few hundred rows stay a scrollable strip, not a poster
BAR = 12
AXIS = 24  # tick labels above the first row
LABELS = 230  # px for the node names on the left
CHART = 920
RIGHT = 30  # room for the last tick label
INDENT = 12  # px per nesting level (iteration and loop children)
CHAR = 6.4  # average width of a label character at the chart's font size
STAR = "\u2605"


# Failed and handled-exception bars are hatched as well as coloured: told apart from the
# critical path's colour by texture, not by hue alone.
_HATCHES = (
    "<defs>"
    + "".join(
        f'<pattern id="hatch-{name}" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{color}"/>'
        f'<rect width="2" height="6" fill="#fff" fill-opacity=".55"/></pattern>'
        for name, color in (("failed", "#b3261e"), ("exception", "#e29a00"))
    )
    + "</defs>"
)


@dataclass(frozen=True, slots=True)
class Bar:
    """One node execution as drawn: times in ms from the run's start; `end_ms` None while it
    runs (drawn to the end of the axis)."""

    id: str
    label: str
    depth: int
    start_ms: float
    end_ms: float | None
    status: str
    critical: bool
    hover: str  # the bar's tooltip


def tick_step(span_ms: float, most: int = 8) -> float:
    """A round step (1, 2 or 5 x 10^k ms) giving at most `most` intervals over the span."""
    raw = max(span_ms, 1e-3) / most
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power  # pragma: no cover - the loop always returns


def tick_label(ms: float) -> str:
    if ms == 0:
        return "0"
    if ms >= 1000:
        return f"{ms / 1000:g} s"
    return f"{ms:g} ms"


def _fit(text: str, room_px: float) -> str:
    most = max(int(room_px / CHAR), 4)
    return text if len(text) <= most else text[: most - 1] + "\u2026"


def waterfall(bars: Sequence[Bar], *, span_ms: float, title: str, description: str) -> Markup:
    """Two inline SVGs of one width: the time axis (decorative, kept in view by run.css while
    the rows scroll) and the rows; `title` and `description` are the chart's text alternative."""
    span = max(span_ms, max((b.end_ms or b.start_ms for b in bars), default=0.0), 1e-3)
    width = LABELS + CHART + RIGHT
    height = ROW * len(bars) + 4
    scale = CHART / span

    def x(ms: float) -> float:
        return LABELS + max(ms, 0.0) * scale

    step = tick_step(span)
    ticks = [k * step for k in range(int(span / step + 1e-9) + 1)]
    axis = [
        f'<svg class="waterfall-axis" aria-hidden="true" width="{width}" height="{AXIS}" '
        f'viewBox="0 0 {width} {AXIS}">',
        f'<text class="tick note" x="6" y="{AXIS - 8}">time from the run\u2019s start</text>',
        *(
            f'<text class="tick" x="{x(t):.1f}" y="{AXIS - 8}">{tick_label(t)}</text>'
            f'<line class="grid" x1="{x(t):.1f}" y1="{AXIS - 4}" x2="{x(t):.1f}" y2="{AXIS}"/>'
            for t in ticks
        ),
        "</svg>",
    ]
    parts = [
        f'<svg class="waterfall" role="img" aria-labelledby="waterfall-title waterfall-desc" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<title id="waterfall-title">{escape(title)}</title>',
        f'<desc id="waterfall-desc">{escape(description)}</desc>',
        _HATCHES,
    ]
    for i in range(0, len(bars), 2):  # zebra stripes guide the eye from label to bar
        parts.append(f'<rect class="stripe" x="0" y="{i * ROW}" width="{width}" height="{ROW}"/>')
    for t in ticks:
        parts.append(f'<line class="grid" x1="{x(t):.1f}" y1="0" x2="{x(t):.1f}" y2="{height}"/>')
    for i, bar in enumerate(bars):
        top = i * ROW
        left = x(bar.start_ms)
        right = x(span if bar.end_ms is None else bar.end_ms)
        indent = 6 + bar.depth * INDENT
        marker = f"{STAR} " if bar.critical else ""
        label = _fit(marker + bar.label, LABELS - indent - 8)
        classes = ["bar", bar.status]
        if bar.critical:
            classes.append("critical")
        if bar.end_ms is None:
            classes.append("running")
        parts.append(
            f'<g class="{escape(" ".join(classes))}" data-bar="{escape(bar.id)}">'
            f"<title>{escape(bar.hover)}</title>"
            f'<text class="label" x="{indent}" y="{top + ROW - 5}">{escape(label)}</text>'
            f'<rect x="{left:.1f}" y="{top + (ROW - BAR) / 2:.1f}" '
            f'width="{max(right - left, 1.5):.1f}" height="{BAR}" rx="2"/></g>'
        )
    parts.append("</svg>")
    return Markup("".join(axis + parts))
