"""Keeping the rollup tables current: read runs as stored, upsert a batch's deltas.

Every rollup column is merged by its own rule in one `INSERT ... ON CONFLICT DO UPDATE`
(sums add, histograms add key by key, minimum and maximum widen), so concurrent writers
never lose each other's figures. Rows are written in key order, so two transactions lock
overlapping rows in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection

from flowscope.rollups.figures import (
    NODE_HISTS,
    NODE_SUMS,
    RUN_HISTS,
    RUN_SUMS,
    Deltas,
    Figures,
)
from flowscope.store import dialect
from flowscope.store.rows import NODE_COLUMNS, RUN_COLUMNS, NodeRow, RunRow
from flowscope.store.tables import metadata

_KEY = (
    "workflow_pk",
    "span_us",
    "scope",
    "bucket_start_us",
    "workflow_version",
    "triggered_from",
)
_CHUNK = 500


class StoredRun(NamedTuple):
    """A run as stored: its row and every node row of it."""

    run: RunRow
    nodes: list[NodeRow]


_RUN_SELECT = f"SELECT id, {', '.join(RUN_COLUMNS)} FROM workflow_runs WHERE "
_NODE_SELECT = f"SELECT {', '.join(NODE_COLUMNS)} FROM node_executions WHERE "


def read_stored_runs(conn: Connection, run_pks: Sequence[int]) -> dict[int, StoredRun]:
    """The stored state of these runs, by run pk, as contributions read it."""
    found: dict[int, StoredRun] = {}
    for start in range(0, len(run_pks), _CHUNK):
        chunk = run_pks[start : start + _CHUNK]
        where, params = dialect.any_of(conn, "id", chunk)
        for pk, *values in conn.exec_driver_sql(_RUN_SELECT + where, params):
            found[pk] = StoredRun(RunRow(*values), [])
        where, params = dialect.any_of(conn, "run_pk", chunk)
        for row in conn.exec_driver_sql(_NODE_SELECT + where, params):
            found[row[0]].nodes.append(NodeRow(*row))
    return found


def apply_deltas(conn: Connection, deltas: Deltas) -> None:
    """Add a batch's deltas (hourly and daily keys) to the rollup tables."""
    _upsert(
        conn,
        "run_rollups",
        (),
        RUN_SUMS,
        RUN_HISTS,
        ("currency",),
        sorted(deltas.runs.items()),
    )
    _upsert(
        conn,
        "node_rollups",
        ("node_id",),
        NODE_SUMS,
        NODE_HISTS,
        ("node_type", "title"),
        sorted(deltas.nodes.items()),
    )


def _upsert(
    conn: Connection,
    table: str,
    extra_key: tuple[str, ...],
    sums: Sequence[str],
    hists: Sequence[str],
    labels: Sequence[str],
    items: Sequence[tuple[tuple[Any, ...], Figures]],
) -> None:
    if not items:
        return
    described = metadata.tables[table].c
    floats = {name for name in sums if described[name].type.python_type is float}
    columns = (*_KEY, *extra_key, *sums, "lat_min_ms", "lat_max_ms", *hists, *labels)
    rows = []
    for key, figures in items:
        rows.append(
            (
                *key,
                *(
                    float(figures.sums.get(name, 0))
                    if name in floats
                    else figures.sums.get(name, 0)
                    for name in sums
                ),
                figures.min_ms,
                figures.max_ms,
                *(orjson.dumps(figures.hists.get(name, {})).decode() for name in hists),
                *(_label(figures, name) for name in labels),
            )
        )
    t = table
    updates = [f"{name} = {t}.{name} + excluded.{name}" for name in sums]
    updates.append(f"lat_min_ms = {dialect.least(conn, f'{t}.lat_min_ms', 'excluded.lat_min_ms')}")
    updates.append(
        f"lat_max_ms = {dialect.greatest(conn, f'{t}.lat_max_ms', 'excluded.lat_max_ms')}"
    )
    updates += [f"{name} = flowscope_hist_add({t}.{name}, excluded.{name})" for name in hists]
    updates += [f"{name} = COALESCE(NULLIF(excluded.{name}, ''), {t}.{name})" for name in labels]
    dialect.bulk_upsert(
        conn,
        table,
        columns,
        (*_KEY, *extra_key),
        "DO UPDATE SET " + ", ".join(updates),
        rows,
        in_key_order=True,
    )


def _label(figures: Figures, name: str) -> str | None:
    value = figures.labels.get(name)
    if value is None:
        return None if name == "title" else ""  # '' keeps the stored label (see NULLIF)
    return str(value)
