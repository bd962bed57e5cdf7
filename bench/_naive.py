"""Naive baselines: the analytics figures computed from raw rows at query time, as a team
without rollups would (percentile_cont on PostgreSQL, window functions on SQLite; critical
paths replayed in Python from the window's node rows)."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import orjson
from sqlalchemy import Connection

from flowscope.analytics.critical_path import Execution, Schedule
from flowscope.performance.regressions import change_points
from flowscope.timeutil import HOUR_US

QS = (0.5, 0.9, 0.95, 0.99)


def _pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _m(conn: Connection) -> str:
    return "%s" if _pg(conn) else "?"


def _percentiles(
    conn: Connection, value: str, source: str, params: tuple[Any, ...], group: str | None = None
) -> dict[Any, list[float]]:
    """Nearest-rank-like percentiles of `value` over `source` rows, by `group` (or one group)."""
    key = group or "0"
    if _pg(conn):
        qs = ", ".join(f"percentile_cont({q}) WITHIN GROUP (ORDER BY {value})" for q in QS)
        grouping = f" GROUP BY {group}" if group else ""
        sql = f"SELECT {key}, {qs}, MAX({value}) FROM {source}{grouping}"
        return {row[0]: list(row[1:]) for row in conn.exec_driver_sql(sql, params)}
    # SQLite has no percentile function: rank every row with window functions.
    ranked = (
        f"SELECT {key} AS g, {value} AS v, "
        f"ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {value}) AS rn, "
        f"COUNT(*) OVER (PARTITION BY {key}) AS n FROM {source}"
    )
    picks = " OR ".join(f"rn = CAST(({q} * n) + 0.999999 AS INTEGER)" for q in QS)
    sql = f"SELECT g, rn, n, v FROM ({ranked}) WHERE {picks} OR rn = n"
    found: dict[Any, dict[int, float]] = defaultdict(dict)
    sizes: dict[Any, int] = {}
    for g, rn, n, v in conn.exec_driver_sql(sql, params):
        found[g][rn] = v
        sizes[g] = n
    return {
        g: [found[g].get(max(1, math.ceil(q * sizes[g])), math.nan) for q in QS]
        + [found[g][sizes[g]]]
        for g in found
    }


def summary(conn: Connection, workflow_pk: int, start: int, end: int) -> dict[str, Any]:
    m = _m(conn)
    out = {}
    for name, (a, b) in (("now", (start, end)), ("previous", (2 * start - end, start))):
        runs = (
            f"workflow_runs WHERE workflow_pk = {m} "
            f"AND started_at_us >= {m} AND started_at_us < {m}"
        )
        params = (workflow_pk, a, b)
        counts = conn.exec_driver_sql(
            "SELECT COUNT(*), SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN status NOT IN ('running', 'paused') THEN 1 ELSE 0 END), "
            "SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens), SUM(cost), "
            f"SUM(unpriced_node_executions), AVG(elapsed_ms) FROM {runs}",
            params,
        ).one()
        finished = (
            f"(SELECT elapsed_ms FROM {runs} AND status NOT IN ('running', 'paused') "
            "AND elapsed_ms IS NOT NULL) AS f"
        )
        latency = _percentiles(conn, "elapsed_ms", finished, params)
        cache = conn.exec_driver_sql(
            "SELECT SUM(CASE WHEN n.cache_hit THEN 1 ELSE 0 END), COUNT(*) FROM node_executions n "
            f"JOIN workflow_runs r ON r.id = n.run_pk WHERE r.workflow_pk = {m} "
            f"AND r.started_at_us >= {m} AND r.started_at_us < {m}",
            params,
        ).one()
        out[name] = {"counts": tuple(counts), "latency": latency, "cache": tuple(cache)}
    return out


def _node_rows(conn: Connection, workflow_pk: int, start: int, end: int) -> str:
    m = _m(conn)
    return (
        "(SELECT n.* FROM node_executions n JOIN workflow_runs r ON r.id = n.run_pk "
        f"WHERE r.workflow_pk = {m} AND r.started_at_us >= {m} AND r.started_at_us < {m}) AS x"
    )


def nodes(conn: Connection, workflow_pk: int, start: int, end: int) -> dict[str, Any]:
    source = _node_rows(conn, workflow_pk, start, end)
    params = (workflow_pk, start, end)
    sums = {
        row[0]: row[1:]
        for row in conn.exec_driver_sql(
            "SELECT node_id, COUNT(*), SUM(CASE WHEN status IN ('failed', 'exception') THEN 1 "
            "ELSE 0 END), SUM(elapsed_ms), SUM(total_tokens), SUM(cost), "
            "SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END), SUM(retry_count) "
            f"FROM {source} GROUP BY node_id",
            params,
        )
    }
    finished = source.replace("SELECT n.*", "SELECT n.node_id, n.elapsed_ms").replace(
        "AS x", "AS x WHERE elapsed_ms IS NOT NULL"
    )
    latency = _percentiles(
        conn, "elapsed_ms", f"(SELECT * FROM {finished}) AS y", params, "node_id"
    )
    return {
        "sums": sums,
        "latency": latency,
        "paths": critical_paths(conn, workflow_pk, start, end),
    }


def critical_paths(conn: Connection, workflow_pk: int, start: int, end: int) -> dict[str, Any]:
    """Every finished run's critical path from the raw rows, and the per-node figures."""
    m = _m(conn)
    rows = conn.exec_driver_sql(
        "SELECT r.id, r.started_at_us, r.finished_at_us, n.id, n.node_id, n.started_at_us, "
        "n.finished_at_us, n.details FROM workflow_runs r JOIN node_executions n "
        f"ON n.run_pk = r.id WHERE r.workflow_pk = {m} AND r.started_at_us >= {m} "
        f"AND r.started_at_us < {m} AND r.status NOT IN ('running', 'paused') "
        "AND n.parent_id IS NULL AND n.finished_at_us IS NOT NULL ORDER BY r.id",
        (workflow_pk, start, end),
    )
    by_run: dict[int, list[Any]] = defaultdict(list)
    bounds: dict[int, tuple[int, int | None]] = {}
    for run_pk, run_start, run_end, *node in rows:
        by_run[run_pk].append(node)
        bounds[run_pk] = (run_start, run_end)
    cp_us: dict[str, int] = defaultdict(int)
    saving: dict[str, int] = defaultdict(int)
    for run_pk, node_rows in by_run.items():
        executions = [
            Execution(i, nid, s, f, (orjson.loads(d) if d else {}).get("predecessor_node_id"))
            for i, nid, s, f, d in node_rows
        ]
        schedule = Schedule(
            executions, run_start_us=bounds[run_pk][0], run_end_us=bounds[run_pk][1]
        )
        for node_id, us in schedule.critical_path().time_on_path_us().items():
            cp_us[node_id] += us
            saving[node_id] += schedule.saving_us(node_id, 0.5)
    return {"runs": len(by_run), "cp_us": dict(cp_us), "saving_us": dict(saving)}


def trends(conn: Connection, workflow_pk: int, start: int, end: int, step: int) -> dict[str, Any]:
    m = _m(conn)
    bucket = f"(started_at_us / {step}) * {step}"
    runs = (
        f"(SELECT {bucket} AS b, elapsed_ms FROM workflow_runs WHERE workflow_pk = {m} "
        f"AND started_at_us >= {m} AND started_at_us < {m} AND elapsed_ms IS NOT NULL) AS x"
    )
    params = (workflow_pk, start, end)
    latency = _percentiles(conn, "elapsed_ms", runs, params, "b")
    sums = conn.exec_driver_sql(
        f"SELECT {bucket}, COUNT(*), SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), "
        f"SUM(cost), SUM(total_tokens) FROM workflow_runs WHERE workflow_pk = {m} "
        f"AND started_at_us >= {m} AND started_at_us < {m} GROUP BY 1",
        params,
    ).all()
    # The same regression search as the endpoint, on the run series (not the node series).
    starts = list(range(start // step * step, end, step))
    by_bucket = {row[0]: row for row in sums}
    hours = [s // HOUR_US % 24 for s in starts] if step == HOUR_US else None
    series = [
        [latency.get(b, [math.nan] * 5)[0] for b in starts],
        [latency.get(b, [math.nan] * 5)[2] for b in starts],
        *(
            [
                (by_bucket[b][i] or 0) / by_bucket[b][1] if b in by_bucket else math.nan
                for b in starts
            ]
            for i in (2, 3, 4)
        ),
    ]
    found = [change_points([float(v) for v in values], hours) for values in series]
    return {"latency": latency, "sums": sums, "regressions": found}


def workflows(conn: Connection, workflow_pks: list[int], start: int, end: int) -> list[Any]:
    out = []
    for pk in workflow_pks:
        m = _m(conn)
        params = (pk, start, end)
        source = (
            f"(SELECT elapsed_ms FROM workflow_runs WHERE workflow_pk = {m} "
            f"AND started_at_us >= {m} "
            f"AND started_at_us < {m} AND elapsed_ms IS NOT NULL) AS x"
        )
        out.append(_percentiles(conn, "elapsed_ms", source, params))
        out.append(
            conn.exec_driver_sql(
                "SELECT COUNT(*), SUM(cost), SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) "
                f"FROM workflow_runs WHERE workflow_pk = {m} AND started_at_us >= {m} "
                f"AND started_at_us < {m}",
                params,
            ).one()
        )
    return out
