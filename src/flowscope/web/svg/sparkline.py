"""A sparkline: one series as a small polyline, gaps where there is no value."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape


def sparkline(
    values: Sequence[float | None], *, label: str, width: int = 120, height: int = 28
) -> Markup:
    """An inline SVG of the series (None = no data); `label` is its text alternative."""
    known = [v for v in values if v is not None]
    title = f"<title>{escape(label)}</title>"
    if not known:
        return Markup(
            f'<svg class="spark" role="img" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">{title}</svg>'
        )
    top, bottom = max(known), min(known)
    span = (top - bottom) or 1.0
    step = width / max(len(values) - 1, 1)
    segments: list[list[str]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            if segments[-1]:
                segments.append([])
            continue
        x = i * step
        y = height - 2 - (value - bottom) / span * (height - 4)
        segments[-1].append(f"{x:.1f},{y:.1f}")
    lines = "".join(
        f'<polyline points="{" ".join(points)}"/>'
        if len(points) > 1
        else f'<circle cx="{points[0].split(",")[0]}" cy="{points[0].split(",")[1]}" r="1.5"/>'
        for points in segments
        if points
    )
    return Markup(
        f'<svg class="spark" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">{title}{lines}</svg>'
    )
