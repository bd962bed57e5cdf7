"""Reading a window of rollups: whole UTC days from day rows, the edges from hour rows.

A window is whole hours (the rollups' resolution). A 30-day window therefore reads about 30
day rows and at most 46 hour rows per key, whatever the raw volume; a trend by hour reads one
hour row per bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection

from flowscope.analytics.sketch import LatencyHistogram
from flowscope.rollups.figures import (
    DAY_US,
    HOUR_US,
    NODE_HISTS,
    NODE_SUMS,
    RUN_HISTS,
    RUN_SUMS,
    Figures,
)
from flowscope.store import dialect


@dataclass(frozen=True, slots=True)
class Filters:
    """Optional filters of every analytics query (None: any)."""

    workflow_version: str | None = None
    triggered_from: str | None = None


def plan(start_us: int, end_us: int) -> list[tuple[int, int, int]]:
    """(span, from, to) ranges of bucket starts covering [start, end) with the fewest rows."""
    first_day = -(-start_us // DAY_US) * DAY_US
    last_day = end_us // DAY_US * DAY_US
    if first_day >= last_day:
        return [(HOUR_US, start_us, end_us)]
    ranges = [(DAY_US, first_day, last_day)]
    if start_us < first_day:
        ranges.append((HOUR_US, start_us, first_day))
    if last_day < end_us:
        ranges.append((HOUR_US, last_day, end_us))
    return ranges


def read_run_figures(
    conn: Connection,
    workflow_pk: int,
    start_us: int,
    end_us: int,
    filters: Filters,
    *,
    bucket_us: int | None = None,
) -> dict[int, Figures]:
    """Run figures of the window merged, by bucket start (`bucket_us`) or all under 0."""
    merged: dict[int, Figures] = {}
    for bucket, _, figures in _rows(
        conn, "run_rollups", (), RUN_SUMS, RUN_HISTS, ("currency",), workflow_pk,
        start_us, end_us, filters, bucket_us,
    ):  # fmt: skip
        _merge(merged, bucket, figures)
    return merged


def read_node_figures(
    conn: Connection,
    workflow_pk: int,
    start_us: int,
    end_us: int,
    filters: Filters,
) -> dict[str, Figures]:
    """Node figures of the window merged by node id."""
    merged: dict[str, Figures] = {}
    for _, key, figures in _rows(
        conn, "node_rollups", ("node_id",), NODE_SUMS, NODE_HISTS, ("node_type", "title"),
        workflow_pk, start_us, end_us, filters, None,
    ):  # fmt: skip
        _merge(merged, key[0], figures)
    return merged


def _merge(merged: dict[Any, Figures], key: Any, figures: Figures) -> None:
    """Add a row's figures under `key`; the first row's object is kept as it is (it is ours)."""
    total = merged.get(key)
    if total is None:
        merged[key] = figures
    else:
        total.add(figures, +1)


def read_node_sums(
    conn: Connection,
    workflow_pk: int,
    start_us: int,
    end_us: int,
    filters: Filters,
    *,
    bucket_us: int,
    columns: Sequence[str],
    node_ids: Sequence[str] | None = None,
) -> dict[tuple[int, str], tuple[float, ...]]:
    """Sums of some additive node columns by (bucket start, node id), added up in SQL: the
    lean read for long series (720 hourly buckets), with no histograms. `bucket_us` 0 sums
    the whole window (bucket 0); `node_ids` restricts the nodes."""
    unknown = set(columns) - set(NODE_SUMS)
    if unknown:
        raise ValueError(f"not additive node columns: {sorted(unknown)}")
    where, params = _where(conn, workflow_pk, filters)
    extra: tuple[Any, ...] = ()
    if node_ids is not None:
        if not node_ids:
            return {}
        of_nodes, extra = dialect.any_of(conn, "node_id", node_ids)
        where += f" AND {of_nodes}"
    sums = ", ".join(f"SUM({name})" for name in columns)
    bucket = "0" if bucket_us == 0 else f"bucket_start_us / {bucket_us} * {bucket_us}"
    sql = (
        f"SELECT {bucket} AS b, node_id, {sums} FROM node_rollups WHERE {where} GROUP BY b, node_id"
    )
    found: dict[tuple[int, str], tuple[float, ...]] = {}
    ranges = [(HOUR_US, start_us, end_us)] if bucket_us == HOUR_US else plan(start_us, end_us)
    for span, low, high in ranges:
        rows = conn.exec_driver_sql(sql, (*params(span, low, high), *extra))
        for bucket_start, node_id, *sums_of in rows:
            key, values = (bucket_start, node_id), [float(v) for v in sums_of]  # PG: Decimal
            if key in found:  # a day split between day and hour rows, or several versions
                found[key] = tuple(a + b for a, b in zip(found[key], values, strict=True))
            else:
                found[key] = tuple(values)
    return found


def _where(
    conn: Connection, workflow_pk: int, filters: Filters
) -> tuple[str, Callable[[int, int, int], tuple[Any, ...]]]:
    """The WHERE clause of a window of rollups, and its parameters for (span, from, to)."""
    mark = dialect.mark(conn)
    where = [f"workflow_pk = {mark}", f"span_us = {mark}", f"scope = {mark}"]
    where += [f"bucket_start_us >= {mark}", f"bucket_start_us < {mark}"]
    exact = filters.workflow_version is not None or filters.triggered_from is not None
    extra: list[Any] = []
    if filters.workflow_version is not None:
        where.append(f"workflow_version = {mark}")
        extra.append(filters.workflow_version)
    if filters.triggered_from is not None:
        where.append(f"triggered_from = {mark}")
        extra.append(filters.triggered_from)

    def params(span: int, low: int, high: int) -> tuple[Any, ...]:
        return (workflow_pk, span, 0 if exact else 1, low, high, *extra)

    return " AND ".join(where), params


def _rows(
    conn: Connection,
    table: str,
    extra_key: Sequence[str],
    sums: Sequence[str],
    hists: Sequence[str],
    labels: Sequence[str],
    workflow_pk: int,
    start_us: int,
    end_us: int,
    filters: Filters,
    bucket_us: int | None,
) -> Iterator[tuple[int, tuple[Any, ...], Figures]]:
    columns = ("bucket_start_us", *extra_key, *sums, "lat_min_ms", "lat_max_ms", *hists, *labels)
    where, params = _where(conn, workflow_pk, filters)
    sql = f"SELECT {', '.join(columns)} FROM {table} WHERE {where}"
    ranges = [(HOUR_US, start_us, end_us)] if bucket_us == HOUR_US else plan(start_us, end_us)
    k = len(extra_key)
    n_sums, n_hists = len(sums), len(hists)
    for span, low, high in ranges:
        for row in conn.exec_driver_sql(sql, params(span, low, high)):
            bucket = 0 if bucket_us is None else row[0] // bucket_us * bucket_us
            at = 1 + k
            figures = Figures(
                sums=dict(zip(sums, row[at : at + n_sums], strict=True)),
                hists={
                    name: orjson.loads(raw)
                    for name, raw in zip(
                        hists, row[at + n_sums + 2 : at + n_sums + 2 + n_hists], strict=True
                    )
                },
                min_ms=row[at + n_sums],
                max_ms=row[at + n_sums + 1],
                labels={
                    name: value
                    for name, value in zip(labels, row[at + n_sums + 2 + n_hists :], strict=True)
                    if value
                },
            )
            yield bucket, tuple(row[1 : 1 + k]), figures


def latency(figures: Figures, hist: str = "lat_hist") -> LatencyHistogram:
    """The merged latency histogram of some figures."""
    return LatencyHistogram.from_counts(
        figures.hists.get(hist, {}),
        sum_ms=float(figures.sums.get("lat_sum_ms", 0.0)),
        min_ms=figures.min_ms,
        max_ms=figures.max_ms,
    )
