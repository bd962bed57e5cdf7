"""How the workflow page puts figures into words and pictures: the summary cards with their
change against the previous period, the trend charts with their regression markers, and the
advisor's evidence formatted by what each figure measures."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from markupsafe import Markup

from flowscope.performance.figures import change_pct
from flowscope.schemas.performance import Summary, Trends
from flowscope.web.svg.trend import Axis, Line, Marker, trend_chart
from flowscope.web.templating import change, duration, integer, money, percent, when
from flowscope.web.window import WindowChoice


@dataclass(frozen=True, slots=True)
class Card:
    """A headline figure against the previous period; `higher` says which way is better
    ("better", "worse", or "" when more is neither)."""

    label: str
    field: str
    value: float | None
    text: str
    previous: str
    change: float | None
    higher: str = ""
    note: str = ""

    @property
    def tone(self) -> str:
        if self.change is None or abs(self.change) < 0.05 or not self.higher:
            return ""
        opposite = "better" if self.higher == "worse" else "worse"
        return self.higher if self.change > 0 else opposite


@dataclass(frozen=True, slots=True)
class Chart:
    svg: Markup
    legend: list[tuple[str, str]]  # (css class, name)
    regressions: list[dict[str, Any]]


def summary_cards(summary: Summary) -> list[Card]:
    """Runs, success rate, p50 and p95, cost, tokens and cache hit rate, each with its change
    against the previous period (computed as the summary's own `change_pct`)."""
    s, b = summary, summary.previous_period
    in_money = partial(money, currency=s.cost.currency)
    figures: list[tuple[str, str, float | None, float | None, Callable[[Any], str], str]] = [
        ("Runs", "run_count", s.run_count, b.run_count, integer, ""),
        ("Success rate", "success_rate", s.success_rate, b.success_rate, percent, "better"),
        ("p50 latency", "p50_ms", s.latency_ms.p50, b.latency_ms.p50, duration, "worse"),
        ("p95 latency", "p95_ms", s.latency_ms.p95, b.latency_ms.p95, duration, "worse"),
        ("Cost", "cost", s.cost.total, b.cost.total, in_money, "worse"),
        ("Tokens", "tokens", s.tokens.total, b.tokens.total, integer, "worse"),
        ("Cache hit rate", "cache_hit_rate", s.cache.hit_rate, b.cache.hit_rate, percent, "better"),
    ]
    notes = {
        "cost": f"{in_money(s.cost.per_run_mean)} per run" if s.run_count else "",
        "cache_hit_rate": f"{integer(s.cache.hits)} hits of {integer(s.cache.lookups)} lookups",
    }
    return [
        Card(
            label,
            name,
            now,
            fmt(now),
            fmt(then),
            change_pct(then, now),
            higher,
            notes.get(name, ""),
        )
        for label, name, now, then, fmt, higher in figures
    ]


def latency_chart(trends: Trends, choice: WindowChoice) -> Chart:
    lines = [
        Line("p50", [b.latency_ms.p50 for b in trends.buckets], "p50"),
        Line("p95", [b.latency_ms.p95 for b in trends.buckets], "p95"),
    ]
    return _chart(
        trends,
        choice,
        lines,
        {"latency_p50_ms": "p50 latency", "latency_p95_ms": "p95 latency"},
        duration,
        chart_id="latency-chart",
        unit="ms",
        title=f"p50 and p95 run latency per {choice.granularity}",
    )


def cost_chart(trends: Trends, choice: WindowChoice, currency: str) -> Chart:
    # A bucket without runs has no cost to speak of: a gap, not a zero.
    lines = [Line("cost", [b.cost if b.run_count else None for b in trends.buckets], "cost")]
    return _chart(
        trends,
        choice,
        lines,
        {"cost_per_run": "cost per run"},
        partial(money, currency=currency),
        chart_id="cost-chart",
        unit=currency,
        title=f"Cost per {choice.granularity} ({currency})",
    )


def _chart(
    trends: Trends,
    choice: WindowChoice,
    lines: list[Line],
    metrics: Mapping[str, str],
    fmt: Callable[[float], str],
    *,
    chart_id: str,
    title: str,
    unit: str,
) -> Chart:
    starts = [b.start for b in trends.buckets]
    found = [r for r in trends.regressions if r.metric in metrics and r.node_id is None]
    regressions: list[dict[str, Any]] = []
    at: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for number, regression in enumerate(found, start=1):
        name = metrics[regression.metric]
        before, after = fmt(regression.before), fmt(regression.after)
        text = (
            f"{name} from {regression.starts_at:%Y-%m-%d %H:%M} UTC: {before} → {after} "
            f"({change(regression.change_pct)})"
        )
        regressions.append(
            {
                "number": number,
                "metric": name,
                "starts_at": regression.starts_at,
                "before": before,
                "after": after,
                "change_pct": regression.change_pct,
            }
        )
        if regression.starts_at in starts:
            at[starts.index(regression.starts_at)].append((str(number), text))
    # Changes of several metrics that start together share one marker.
    markers = [
        Marker(i, ",".join(n for n, _ in here), "; ".join(t for _, t in here))
        for i, here in sorted(at.items())
    ]
    svg = trend_chart(
        starts,
        lines,
        chart_id=chart_id,
        title=title,
        axis=Axis(unit=unit, hourly=choice.granularity == "hour"),
        markers=markers,
    )
    return Chart(svg, [(line.css, line.name) for line in lines], regressions)


def evidence_rows(figures: Mapping[str, Any], *, currency: str) -> list[tuple[str, str]]:
    """The figures a rule looked at, each formatted as its name says it is measured."""
    return [
        (name.replace("_", " "), _figure(name, value, currency)) for name, value in figures.items()
    ]


def _figure(name: str, value: Any, currency: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if name.endswith("_pct"):
            return change(value)
        if "_ms" in name:
            return duration(value)
        if name.endswith(("_share", "_rate")):
            return percent(value)
        if "cost" in name:
            return money(value, currency)
        return integer(value) if isinstance(value, int) or abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, list | tuple):
        return ", ".join(_figure(name, v, currency) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_figure(str(k), v, currency)}" for k, v in value.items())
    if name.endswith("_at") and isinstance(value, str):
        try:
            return when(datetime.fromisoformat(value))
        except ValueError:
            pass
    return str(value)
