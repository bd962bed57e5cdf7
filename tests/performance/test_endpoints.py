"""The analytics endpoints over HTTP, on SQLite and PostgreSQL, against figures computed here
from the data each test generates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import KeyFactory, auth
from tests.factories import batch, llm, node, run

WF = "/api/v1/apps/support-bot/workflows/triage"
DAY_WINDOW = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"}


def parallel_run(run_id: str, offset: float, *, a1: float = 3.0) -> dict[str, Any]:
    """start -> a1 -> a2 -> end, with `enrich` on a parallel branch that nothing waits for.

    `enrich` is the slowest node (5.5 s) but ends before a2, so the run never waits on it.
    """
    t = offset
    return run(
        run_id,
        [
            node(f"{run_id}-s", "start", start=t, end=t + 1, node_type="start"),
            llm(f"{run_id}-a1", node_id="a1", start=t + 1, end=t + 1 + a1),
            node(f"{run_id}-a2", "a2", start=t + 1 + a1, end=t + 4 + a1),
            node(f"{run_id}-e", "enrich", start=t + 1, end=t + 6.5, node_type="http-request"),
            node(f"{run_id}-end", "end", start=t + 4.5 + a1, end=t + 5 + a1, node_type="end"),
        ],
        start=t,
        end=t + 5 + a1,
    )


def post(client: TestClient, key: str, *runs: dict[str, Any]) -> None:
    response = client.post("/api/v1/runs", json=batch(*runs), headers=auth(key))
    assert response.status_code == 200, response.text


def get(client: TestClient, key: str, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params, headers=auth(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_slowest_node_on_a_parallel_branch_is_not_the_bottleneck(
    client: TestClient, make_key: KeyFactory
) -> None:
    key = make_key()
    post(client, key, *(parallel_run(f"r{i}", 600.0 * i) for i in range(5)))

    nodes = {
        n["node_id"]: n for n in get(client, key, f"{WF}/performance/nodes", **DAY_WINDOW)["data"]
    }
    assert nodes["enrich"]["latency_ms"]["p50"] == pytest.approx(5500, rel=0.01)
    assert max(nodes.values(), key=lambda n: n["latency_ms"]["p50"])["node_id"] == "enrich"
    assert nodes["enrich"]["critical_path_share"] == 0
    assert nodes["enrich"]["on_critical_path_rate"] == 0
    # On the path: start 1 s, a1 3 s, a2 3 s, end 0.5 s (7.5 s); every run has the same path.
    assert nodes["a1"]["critical_path_share"] == pytest.approx(3 / 7.5)
    assert nodes["end"]["critical_path_share"] == pytest.approx(0.5 / 7.5)
    assert nodes["a1"]["on_critical_path_rate"] == 1
    assert nodes["enrich"]["share_of_run_time"] == pytest.approx(5.5 / 8)

    body = get(client, key, f"{WF}/performance/bottlenecks", **DAY_WINDOW)
    ranked = [b["node_id"] for b in body["data"]]
    assert "enrich" not in ranked
    assert ranked[:2] == ["a1", "a2"]  # tied at 3 s per run, then by node id
    assert ranked[2:] == ["start", "end"]
    a1 = body["data"][0]
    assert a1["critical_path_ms_per_run"] == pytest.approx(3000)
    # Halving a1 (3 s -> 1.5 s) moves a2 to 2.5-5.5 s, but `end` also waits for enrich (timing
    # alone says it may depend on it), which ends at 6.5 s: `end` runs 7-7.5 s, and the run
    # ends 0.5 s earlier, not 1.5 s as subtracting would say.
    assert a1["mean_saving_ms_per_run"] == pytest.approx(500)
    assert a1["estimated_saving_ms_per_run"] == pytest.approx(500, abs=0.02 * 8000)
    assert body["threshold_percentile"] == 90


def diamond_run(run_id: str, offset: float, x: float, y: float) -> dict[str, Any]:
    """start (1 s) -> x | y (parallel, waited for by `end`) -> end (0.5 s), graph given."""
    t = offset
    fork = t + 1
    join = fork + max(x, y)
    return run(
        run_id,
        [
            node(f"{run_id}-s", "start", start=t, end=fork, node_type="start"),
            llm(f"{run_id}-x", node_id="x", start=fork, end=fork + x, predecessor_node_id="start"),
            node(f"{run_id}-y", "y", start=fork, end=fork + y, predecessor_node_id="start"),
            node(f"{run_id}-end", "end", start=join, end=join + 0.5, node_type="end"),
        ],
        start=t,
        end=join + 0.5,
    )


def test_the_saving_per_run_is_what_one_run_saves(client: TestClient, make_key: KeyFactory) -> None:
    """Issue 15: the saving per run was the drop of the median run, a difference of medians."""
    key = make_key()
    durations = [(0.1, 0.3), (0.2, 0.3), (0.6, 0.1), (0.8, 0.1), (1.0, 0.9)]  # (x, y) seconds
    post(
        client, key, *(diamond_run(f"r{i}", 600.0 * i, x, y) for i, (x, y) in enumerate(durations))
    )
    # Truth, by hand: halving x saves min(x / 2, x - y) when x is the longer branch, else 0.
    savings = [max(0.0, min(x / 2, x - y)) * 1000 for x, y in durations]  # 0, 0, 300, 400, 100
    runs_ms = sorted((1 + max(x, y) + 0.5) * 1000 for x, y in durations)
    halved_ms = sorted((1 + max(x / 2, y) + 0.5) * 1000 for x, y in durations)
    body = get(client, key, f"{WF}/performance/bottlenecks", **DAY_WINDOW)
    (x_node,) = [b for b in body["data"] if b["node_id"] == "x"]
    assert x_node["estimated_saving_ms_per_run"] == pytest.approx(np.median(savings), rel=0.01)
    assert x_node["mean_saving_ms_per_run"] == pytest.approx(np.mean(savings))
    drop = np.median(runs_ms) - np.median(halved_ms)  # 300 ms: not what any run saves here
    assert x_node["median_run_drop_ms"] == pytest.approx(drop, abs=0.01 * np.median(runs_ms))
    assert x_node["estimated_saving_ms_per_run"] < x_node["median_run_drop_ms"]


def test_a_single_run(client: TestClient, make_key: KeyFactory) -> None:
    key = make_key()
    post(client, key, parallel_run("only", 60.0))

    summary = get(client, key, f"{WF}/performance/summary", **DAY_WINDOW)
    assert summary["run_count"] == 1 and summary["succeeded"] == 1 and summary["failed"] == 0
    assert summary["success_rate"] == 1
    latency = summary["latency_ms"]
    assert {latency[p] for p in ("mean", "p50", "p90", "p95", "p99", "max")} == {8000.0}
    assert summary["tokens"] == {"prompt": 900, "completion": 40, "total": 940}
    assert summary["cost"]["total"] > 0 and summary["cost"]["currency"] == "USD"
    assert summary["throughput_per_hour"] == pytest.approx(1 / 24)
    assert summary["previous_period"]["run_count"] == 0
    assert summary["previous_period"]["change_pct"] == {
        "latency_p95": None,
        "cost": None,
        "success_rate": None,
    }

    path = get(client, key, "/api/v1/runs/only/critical-path")
    assert path["critical_path"] == ["only-s", "only-a1", "only-a2", "only-end"]
    assert path["critical_path_ms"] == pytest.approx(7500)
    slack = {s["node_id"]: s["slack_ms"] for s in path["steps"]}
    # enrich ends at 6.5 s; `end` starts 0.5 s after what it waited for, and may not move.
    assert slack == {"start": 0, "a1": 0, "a2": 0, "end": 0, "enrich": pytest.approx(500)}


def test_an_empty_window_gives_zeros_and_nulls(client: TestClient, make_key: KeyFactory) -> None:
    key = make_key()
    post(client, key, parallel_run("r", 0.0))
    window = {"start": "2026-10-01T00:00:00Z", "end": "2026-10-02T00:00:00Z"}

    summary = get(client, key, f"{WF}/performance/summary", **window)
    assert summary["run_count"] == 0 and summary["success_rate"] is None
    assert set(summary["latency_ms"].values()) == {None}
    assert summary["cost"] == {
        "total": 0,
        "currency": "USD",
        "per_run_mean": None,
        "unpriced_node_executions": 0,
    }
    assert summary["cache"] == {"lookups": 0, "hits": 0, "hit_rate": None}
    assert get(client, key, f"{WF}/performance/nodes", **window)["data"] == []
    assert get(client, key, f"{WF}/performance/bottlenecks", **window)["data"] == []
    trends = get(client, key, f"{WF}/performance/trends", granularity="hour", **window)
    assert len(trends["buckets"]) == 24 and trends["regressions"] == []
    assert {b["run_count"] for b in trends["buckets"]} == {0}
    overview = get(client, key, "/api/v1/apps/support-bot/workflows", **window)
    assert overview["data"][0]["run_count"] == 0


def test_resent_runs_are_not_counted_twice(client: TestClient, make_key: KeyFactory) -> None:
    key = make_key()
    first = [parallel_run(f"r{i}", 600.0 * i) for i in range(4)]
    running = [
        {**r, "status": "running", "finished_at": None, "node_executions": r["node_executions"][:2]}
        for r in first
    ]
    post(client, key, *running)
    post(client, key, *first)
    post(client, key, *first)  # the same again
    post(client, key, *running)  # late, stale reports: they do not move runs back
    # r0 ends up failed and slower: its earlier contribution must be taken back.
    slower = parallel_run("r0", 0.0, a1=13.0)
    post(client, key, {**slower, "status": "failed"})

    summary = get(client, key, f"{WF}/performance/summary", **DAY_WINDOW)
    assert (summary["run_count"], summary["succeeded"], summary["failed"]) == (4, 3, 1)
    durations = [18000.0, 8000.0, 8000.0, 8000.0]
    assert summary["latency_ms"]["mean"] == pytest.approx(np.mean(durations))
    assert summary["latency_ms"]["max"] == 18000.0
    assert summary["tokens"]["total"] == 4 * 940
    nodes = {
        n["node_id"]: n for n in get(client, key, f"{WF}/performance/nodes", **DAY_WINDOW)["data"]
    }
    assert {n["executions"] for n in nodes.values()} == {4}
    assert nodes["a1"]["latency_ms"]["mean"] == pytest.approx((13000 + 3 * 3000) / 4)
    assert nodes["a1"]["latency_ms"]["p99"] == pytest.approx(13000, rel=0.01)
    runs_analysed = get(client, key, f"{WF}/performance/bottlenecks", **DAY_WINDOW)["runs_analysed"]
    assert runs_analysed == 4


def test_filters_by_version_and_trigger(client: TestClient, make_key: KeyFactory) -> None:
    key = make_key()
    post(
        client,
        key,
        {**parallel_run("a", 0.0), "workflow_version": "v1", "triggered_from": "app"},
        {**parallel_run("b", 600.0, a1=5.0), "workflow_version": "v2", "triggered_from": "app"},
        {**parallel_run("c", 1200.0), "workflow_version": "v2", "triggered_from": "debug"},
    )
    path = f"{WF}/performance/summary"
    assert get(client, key, path, **DAY_WINDOW)["run_count"] == 3
    assert get(client, key, path, workflow_version="v2", **DAY_WINDOW)["run_count"] == 2
    only_b = get(client, key, path, workflow_version="v2", triggered_from="app", **DAY_WINDOW)
    assert only_b["run_count"] == 1 and only_b["latency_ms"]["p50"] == 10000.0
    assert get(client, key, path, workflow_version="v9", **DAY_WINDOW)["run_count"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"days": 0}, "days"),
        ({"days": 366}, "days"),
        ({"days": 2, "start": "2026-11-01T00:00:00Z"}, "days"),
        ({"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "start"),
        ({"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "start"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_bad_windows_are_422_naming_the_parameter(
    client: TestClient, make_key: KeyFactory, params: dict[str, Any], field: str
) -> None:
    key = make_key()
    post(client, key, parallel_run("r", 0.0))
    response = client.get(f"{WF}/performance/summary", params=params, headers=auth(key))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]


@pytest.mark.parametrize("value", ["0", "-5", "100.5", "abc"])
def test_a_bad_percentile_is_422(client: TestClient, make_key: KeyFactory, value: str) -> None:
    key = make_key()
    post(client, key, parallel_run("r", 0.0))
    response = client.get(
        f"{WF}/performance/bottlenecks", params={"threshold_percentile": value}, headers=auth(key)
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "threshold_percentile"]


def test_a_bad_granularity_is_422(client: TestClient, make_key: KeyFactory) -> None:
    key = make_key()
    response = client.get(f"{WF}/performance/trends?granularity=week", headers=auth(key))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "granularity"]


def test_unknown_and_foreign_workflows_and_runs_are_404(
    client: TestClient, make_key: KeyFactory
) -> None:
    mine, theirs = make_key(tenant="acme"), make_key(tenant="globex")
    post(client, mine, parallel_run("r", 0.0))
    for path in (
        f"{WF}/performance/summary",
        f"{WF}/performance/nodes",
        f"{WF}/performance/bottlenecks",
        f"{WF}/performance/trends",
        "/api/v1/apps/support-bot/workflows",
        "/api/v1/runs/r/critical-path",
    ):
        assert client.get(path, headers=auth(theirs)).status_code == 404, path
        assert client.get(path, headers=auth(mine)).status_code == 200, path
    assert client.get(f"{WF}/performance/summary").status_code == 401
    ingest_only = make_key(role="ingest", tenant="acme")
    assert client.get(f"{WF}/performance/summary", headers=auth(ingest_only)).status_code == 403


def test_days_counts_back_from_now(client: TestClient, make_key: KeyFactory) -> None:
    key = make_key()
    post(client, key, parallel_run("r", 0.0))  # on 2026-11-01, long before the window
    before = datetime.now(UTC)
    body = get(client, key, "/api/v1/apps/support-bot/workflows", days=3)
    start, end = (datetime.fromisoformat(body["window"][k]) for k in ("start", "end"))
    assert end - start == timedelta(days=3)
    assert end.minute == end.second == end.microsecond == 0
    assert before <= end <= before + timedelta(hours=1, minutes=1)
    assert body["data"][0]["workflow_id"] == "triage"
    assert body["data"][0]["run_count"] == 0
    assert body["data"][0]["last_run_at"] == "2026-11-01T10:00:00Z"
