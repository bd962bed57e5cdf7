"""Trends find an injected regression and stay quiet on a stable noisy series; reported
percentiles stay within 2% of numpy's exact nearest rank on random data."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from flowscope import catalog
from flowscope.ingestion.ingest import ingest_runs
from flowscope.performance.nodes import read_nodes
from flowscope.performance.summary import read_summary
from flowscope.performance.trends import read_trends
from flowscope.performance.window import make_window
from flowscope.rollups.read import Filters
from flowscope.runs.pricing import PriceBook
from flowscope.schemas.runs import RUN_CREATE
from flowscope.store.engine import read_transaction, write_transaction
from flowscope.tenancy.keys import ensure_tenant

PRICES = PriceBook()
START = datetime(2026, 10, 1, tzinfo=UTC)
_workflows = itertools.count()


def ingest(engine: Engine, runs: list[dict[str, Any]]) -> int:
    with write_transaction(engine) as conn:
        tenant_id = ensure_tenant(conn, "acme")
        for i in range(0, len(runs), 200):
            chunk = [RUN_CREATE.validate_python(r) for r in runs[i : i + 200]]
            ingest_runs(conn, tenant_id, chunk, prices=PRICES)
        return tenant_id


def three_node_run(
    run_id: str, workflow: str, at: datetime, ms: dict[str, float]
) -> dict[str, Any]:
    """prep -> call -> post, one after the other, with the given durations."""
    nodes, t = [], at
    for node_id in ("prep", "call", "post"):
        end = t + timedelta(milliseconds=ms[node_id])
        nodes.append({"id": f"{run_id}-{node_id}", "node_id": node_id, "node_type": "code",
                      "status": "succeeded", "started_at": t.isoformat(),
                      "finished_at": end.isoformat()})  # fmt: skip
        t = end
    return {"id": run_id, "app_id": "app", "workflow_id": workflow, "status": "succeeded",
            "started_at": at.isoformat(), "finished_at": t.isoformat(), "node_executions": nodes}  # fmt: skip


def daily_series(
    engine: Engine, workflow: str, *, slow_from_day: int | None, granularity: str = "day"
) -> Any:
    """24 days of runs, 2 per hour, lognormal noise; `call` 1.6x slower from a given day."""
    rng = random.Random(11)
    runs = []
    for hour in range(24 * 24):
        for k in range(2):
            at = START + timedelta(hours=hour, minutes=rng.random() * 59)
            factor = 1.6 if slow_from_day is not None and hour >= slow_from_day * 24 else 1.0
            ms = {
                "prep": 50 * math.exp(0.3 * rng.gauss(0, 1)),
                "call": 800 * factor * math.exp(0.3 * rng.gauss(0, 1)),
                "post": 40 * math.exp(0.3 * rng.gauss(0, 1)),
            }
            runs.append(three_node_run(f"{workflow}-{hour}-{k}", workflow, at, ms))
    tenant_id = ingest(engine, runs)
    window = make_window(None, START, START + timedelta(days=24), default_days=30)
    with read_transaction(engine) as conn:
        workflow_pk = catalog.read_workflow_pk(conn, tenant_id, "app", workflow)
        assert workflow_pk is not None
        return read_trends(conn, workflow_pk, window, Filters(), granularity=granularity)


def test_an_injected_latency_regression_is_found(engine: Engine) -> None:
    trends = daily_series(engine, "slow", slow_from_day=16)
    assert len(trends.buckets) == 24
    found = {(r.metric, r.node_id): r for r in trends.regressions}
    assert ("latency_p50_ms", None) in found, trends.regressions
    assert ("node_latency_mean_ms", "call") in found
    for regression in (found[("latency_p50_ms", None)], found[("node_latency_mean_ms", "call")]):
        assert regression.starts_at == START + timedelta(days=16)
        assert regression.change_pct > 40  # 1.6x on `call`, most of the run
        assert regression.confidence >= 0.99
    assert ("node_latency_mean_ms", "prep") not in found


@pytest.mark.parametrize("granularity", ["hour", "day"])
def test_a_regression_in_the_last_three_days_is_found(engine: Engine, granularity: str) -> None:
    """As in the demo: 576 hourly buckets are searched day by day, then placed at the hour."""
    trends = daily_series(engine, f"late-{granularity}", slow_from_day=21, granularity=granularity)
    found = {(r.metric, r.node_id): r for r in trends.regressions}
    # Placed at the hour from 2 noisy runs per hour: within a few hours of the truth.
    starts_at = found[("node_latency_mean_ms", "call")].starts_at
    assert abs(starts_at - (START + timedelta(days=21))) <= timedelta(hours=3)
    assert found[("latency_p50_ms", None)].change_pct > 40


@pytest.mark.parametrize("granularity", ["hour", "day"])
def test_a_stable_noisy_series_has_no_regression(engine: Engine, granularity: str) -> None:
    trends = daily_series(
        engine, f"steady-{granularity}", slow_from_day=None, granularity=granularity
    )
    assert trends.regressions == []
    per_bucket = 48 if granularity == "day" else 2
    assert {b.run_count for b in trends.buckets} == {per_bucket}


def nearest_rank(values: list[float], q: float) -> float:
    return float(np.percentile(values, q * 100, method="inverted_cdf"))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.floats(min_value=0.01, max_value=1e7, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=150,
    ),
    st.sampled_from([1, 3, 7]),
)
def test_percentiles_are_within_2_percent_of_exact(
    engine: Engine, durations: list[float], spread_days: int
) -> None:
    """Runs (and their one node) spread over days and hours, so day and hour rollups merge."""
    workflow = f"wf{next(_workflows)}"
    rng = random.Random(len(durations))
    runs = []
    for i, ms in enumerate(durations):
        at = START + timedelta(hours=rng.randrange(spread_days * 24), minutes=rng.random() * 59)
        runs.append(
            three_node_run(f"{workflow}-{i}", workflow, at, {"prep": ms, "call": 0, "post": 0})
        )
    tenant_id = ingest(engine, runs)
    window = make_window(None, START, START + timedelta(days=spread_days), default_days=7)
    with read_transaction(engine) as conn:
        workflow_pk = catalog.read_workflow_pk(conn, tenant_id, "app", workflow)
        assert workflow_pk is not None
        summary = read_summary(conn, workflow_pk, window, Filters())
        nodes = {n.node_id: n for n in read_nodes(conn, workflow_pk, window, Filters()).data}
    # Stored times are whole microseconds: compare with what was stored.
    stored = [round(ms * 1000) / 1000 for ms in durations]
    assert summary.run_count == len(durations)
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        exact = nearest_rank(stored, q)
        assert math.isclose(getattr(summary.latency_ms, name), exact, rel_tol=0.02), name
        assert math.isclose(getattr(nodes["prep"].latency_ms, name), exact, rel_tol=0.02), name
    assert math.isclose(summary.latency_ms.max or 0, max(stored), rel_tol=0.02)
    assert math.isclose(summary.latency_ms.mean or 0, float(np.mean(stored)), rel_tol=1e-9)
