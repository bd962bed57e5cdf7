"""Cache counters: counted in memory on the request path, flushed as additive upserts.

A lookup must stay well under a millisecond, so it never writes: `CacheCounters.count` adds to
an in-process dict, and `flush` (every few seconds, and before statistics are read in this
process) adds the sums to `cache_stats`. A crash loses at most the last few seconds of counts.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from flowscope import catalog
from flowscope.cache.backends.base import CacheBackend
from flowscope.performance.window import Window
from flowscope.rollups.read import Filters, latency, read_node_figures
from flowscope.schemas.cache import CacheDay, CacheStatistics, CacheTopNode, CacheTopNodes
from flowscope.store import dialect
from flowscope.store.engine import write_transaction
from flowscope.timeutil import DAY_US, HOUR_US, from_us, now_us

COUNTS = ("lookups", "hits", "unmeasured_hits", "stores", "skipped")
AMOUNTS = ("time_saved_ms", "cost_saved")
FIELDS = (*COUNTS, *AMOUNTS)
_KEY = ("tenant_id", "app_id", "workflow_id", "day_us", "node_id")


class CacheCounters:
    """Thread-safe in-memory sums by (tenant, app, workflow, day, node)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sums: dict[tuple[Any, ...], list[float]] = {}

    def count(
        self, tenant_id: int, app_id: str, workflow_id: str, node_id: str, **added: float
    ) -> None:
        today = now_us() // DAY_US * DAY_US
        key = (tenant_id, app_id, workflow_id, today, node_id)
        with self._lock:
            sums = self._sums.setdefault(key, [0.0] * len(FIELDS))
            for name, value in added.items():
                sums[FIELDS.index(name)] += value

    def flush(self, engine: Engine) -> None:
        """Add the counts so far to the database; they are kept if the write fails."""
        with self._lock:
            taken, self._sums = self._sums, {}
        if not taken:
            return
        rows = [
            (*key, *(round(v) for v in sums[: len(COUNTS)]), *sums[len(COUNTS) :])
            for key, sums in sorted(taken.items())
        ]
        update = ", ".join(f"{name} = cache_stats.{name} + excluded.{name}" for name in FIELDS)
        workflows: dict[int, set[tuple[str, str]]] = {}
        for tenant_id, app_id, workflow_id, *_ in taken:
            workflows.setdefault(tenant_id, set()).add((app_id, workflow_id))
        try:
            with write_transaction(engine) as conn:
                # A workflow the cache has seen is known, runs or not (its routes answer).
                for tenant_id, keys in sorted(workflows.items()):
                    catalog.ensure_workflows(conn, tenant_id, keys, now_us())
                dialect.bulk_upsert(
                    conn, "cache_stats", (*_KEY, *FIELDS), _KEY, f"DO UPDATE SET {update}",
                    rows, in_key_order=True,
                )  # fmt: skip
        except Exception:
            with self._lock:  # put them back for the next flush
                for key, sums in taken.items():
                    mine = self._sums.setdefault(key, [0.0] * len(FIELDS))
                    for i, value in enumerate(sums):
                        mine[i] += value
            raise


@dataclass(frozen=True, slots=True)
class NodeCounts:
    node_id: str
    lookups: int
    hits: int
    unmeasured_hits: int
    stores: int
    skipped: int
    time_saved_ms: float
    cost_saved: float


def read_counts(
    conn: Connection,
    tenant_id: int,
    app_id: str,
    workflow_id: str,
    start_us: int,
    end_us: int,
    *,
    by: str,
) -> Sequence[tuple[Any, NodeCounts]]:
    """Counts of the days in [start, end) summed by `by`: "day" (key: the day's start as a
    datetime) or "node" (key: the node id). Hits on entries stored without their compute time
    are credited with the node's observed median latency over the window (from the rollups)."""
    mark = dialect.mark(conn)
    sums = ", ".join(f"SUM({name})" for name in FIELDS)
    rows = conn.exec_driver_sql(
        f"SELECT day_us, node_id, {sums} FROM cache_stats WHERE tenant_id = {mark} "
        f"AND app_id = {mark} AND workflow_id = {mark} AND day_us >= {mark} AND day_us < {mark} "
        "GROUP BY day_us, node_id ORDER BY day_us, node_id",
        (tenant_id, app_id, workflow_id, start_us // DAY_US * DAY_US, end_us),
    ).all()
    medians: dict[str, float] = {}
    if any(row[2 + COUNTS.index("unmeasured_hits")] for row in rows):
        medians = _node_medians(conn, tenant_id, app_id, workflow_id, start_us, end_us)
    totals: dict[Any, list[float]] = {}
    for day, node_id, *values in rows:
        values = [float(v) for v in values]
        unmeasured = values[COUNTS.index("unmeasured_hits")]
        values[FIELDS.index("time_saved_ms")] += unmeasured * medians.get(node_id, 0.0)
        key = from_us(day) if by == "day" else node_id
        total = totals.setdefault(key, [0.0] * len(FIELDS))
        for i, value in enumerate(values):
            total[i] += value
    return [
        (
            key,
            NodeCounts(
                key if by == "node" else "",
                *(round(v) for v in total[: len(COUNTS)]),
                *total[len(COUNTS) :],
            ),
        )
        for key, total in totals.items()
    ]


def _node_medians(
    conn: Connection, tenant_id: int, app_id: str, workflow_id: str, start_us: int, end_us: int
) -> dict[str, float]:
    workflow_pk = catalog.read_workflow_pk(conn, tenant_id, app_id, workflow_id)
    if workflow_pk is None:
        return {}
    start = start_us // HOUR_US * HOUR_US
    end = -(-end_us // HOUR_US) * HOUR_US
    figures = read_node_figures(conn, workflow_pk, start, end, Filters())
    return {
        node_id: median
        for node_id, f in figures.items()
        if (median := latency(f).quantile(0.5)) is not None
    }


def read_statistics(
    conn: Connection,
    backend: CacheBackend,
    tenant_id: int,
    app_id: str,
    workflow_id: str,
    window: Window,
) -> CacheStatistics:
    """Lookups, hits and savings of the window's days, day by day, and the workflow's live
    entries in `backend` now. Flush the counters first to include this process's latest."""
    daily = read_counts(
        conn, tenant_id, app_id, workflow_id, window.start_us, window.end_us, by="day"
    )
    entries, size = backend.stats(tenant_id, app_id, workflow_id)
    lookups = sum(c.lookups for _, c in daily)
    hits = sum(c.hits for _, c in daily)
    return CacheStatistics(
        window=window.public(),
        lookups=lookups,
        hits=hits,
        misses=lookups - hits,
        hit_rate=hits / lookups if lookups else None,
        stores=sum(c.stores for _, c in daily),
        skipped=sum(c.skipped for _, c in daily),
        errors=getattr(backend, "errors", 0),
        entries=entries,
        bytes=size,
        time_saved_ms=sum(c.time_saved_ms for _, c in daily),
        cost_saved=round(sum(c.cost_saved for _, c in daily), 9),
        daily=[
            CacheDay(
                date=day,
                lookups=c.lookups,
                hits=c.hits,
                misses=c.lookups - c.hits,
                hit_rate=c.hits / c.lookups if c.lookups else None,
                time_saved_ms=c.time_saved_ms,
                cost_saved=round(c.cost_saved, 9),
            )
            for day, c in daily
        ],
    )


def read_top_nodes(
    conn: Connection, tenant_id: int, app_id: str, workflow_id: str, window: Window, limit: int
) -> CacheTopNodes:
    """The workflow's nodes by cache hits over the window (then time saved, then id)."""
    nodes = read_counts(
        conn, tenant_id, app_id, workflow_id, window.start_us, window.end_us, by="node"
    )
    ranked = sorted((c for _, c in nodes), key=lambda c: (-c.hits, -c.time_saved_ms, c.node_id))
    return CacheTopNodes(
        window=window.public(),
        data=[
            CacheTopNode(
                node_id=c.node_id,
                lookups=c.lookups,
                hits=c.hits,
                hit_rate=c.hits / c.lookups if c.lookups else None,
                time_saved_ms=c.time_saved_ms,
                cost_saved=round(c.cost_saved, 9),
            )
            for c in ranked[:limit]
        ],
    )
