"""Ingestion semantics over HTTP, on SQLite and PostgreSQL: idempotence, updates, atomicity."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import KeyFactory, auth
from tests.factories import batch, llm, node, run


@pytest.fixture
def key(make_key: KeyFactory) -> str:
    return make_key("admin")


def post(client: TestClient, key: str, body: Any) -> Any:
    response = client.post("/api/v1/runs", json=body, headers=auth(key))
    return response


def get_run(client: TestClient, key: str, run_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/runs/{run_id}", headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()


def list_runs(client: TestClient, key: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(
        "/api/v1/apps/support-bot/workflows/triage/runs", params=params, headers=auth(key)
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def three_node_run(run_id: str = "r1", status: str = "succeeded") -> dict[str, Any]:
    return run(
        run_id,
        [
            node("n1", "start", start=0, end=0.1, node_type="start"),
            llm("n2", node_id="llm_1", start=0.1, end=2.0, prompt=1000, completion=100),
            llm("n3", node_id="llm_2", start=2.0, end=5.0, prompt=500, completion=50, cost=0.5),
        ],
        status=status,
    )


def test_ingest_and_read_back(client: TestClient, key: str) -> None:
    response = post(client, key, batch(three_node_run()))
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted_runs": 1, "accepted_node_executions": 3}

    stored = get_run(client, key, "r1")
    assert stored["status"] == "succeeded"
    assert stored["started_at"] == "2026-11-01T10:00:00Z"
    assert stored["elapsed_ms"] == 10_000
    assert stored["node_count"] == 3
    assert stored["prompt_tokens"] == 1500
    assert stored["completion_tokens"] == 150
    assert stored["total_tokens"] == 1650
    assert [n["id"] for n in stored["node_executions"]] == ["n1", "n2", "n3"]
    n2 = stored["node_executions"][1]
    # gpt-4o-mini: $0.15 per million input tokens, $0.60 per million output tokens.
    assert n2["cost_source"] == "estimated"
    assert n2["cost"] == pytest.approx(1000 * 0.15e-6 + 100 * 0.6e-6)
    assert n2["elapsed_ms"] == pytest.approx(1900)
    assert stored["node_executions"][2]["cost_source"] == "reported"
    assert stored["cost"] == pytest.approx(n2["cost"] + 0.5)


def test_resending_a_batch_changes_nothing(client: TestClient, key: str) -> None:
    body = batch(three_node_run("r1"), three_node_run("r2"))
    assert post(client, key, body).status_code == 200
    first = [get_run(client, key, r) for r in ("r1", "r2")]
    for _ in range(3):
        assert post(client, key, body).status_code == 200
    assert [get_run(client, key, r) for r in ("r1", "r2")] == first
    assert len(list_runs(client, key)) == 2


def test_status_moves_forward_and_nodes_accumulate(client: TestClient, key: str) -> None:
    started = run("r1", [node("n1", start=0, end=1)], status="running", end=None)
    finished = run(
        "r1",
        [node("n2", start=1, end=2), node("n3", start=2, end=3, status="failed", error="boom")],
        status="failed",
        end=3,
        error="boom",
    )
    assert post(client, key, batch(started)).status_code == 200
    assert get_run(client, key, "r1")["status"] == "running"
    assert post(client, key, batch(finished)).status_code == 200
    stored = get_run(client, key, "r1")
    assert stored["status"] == "failed"
    assert stored["error"] == "boom"
    assert stored["node_count"] == 3
    assert stored["elapsed_ms"] == 3000


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_any_order_of_arrival_ends_the_same(
    client: TestClient, key: str, order: tuple[int, ...]
) -> None:
    reports = [
        run("r1", [node("a", start=0, end=None, status="running")], status="running", end=None),
        run(
            "r1",
            [node("a", start=0, end=1), node("b", start=1, end=None, status="running")],
            status="running",
            end=None,
        ),
        run("r1", [node("b", start=1, end=2), llm("c", start=2, end=3)], status="succeeded", end=3),
    ]
    for i in order:
        assert post(client, key, batch(reports[i])).status_code == 200
    stored = get_run(client, key, "r1")
    assert stored["status"] == "succeeded"
    assert stored["finished_at"] == "2026-11-01T10:00:03Z"
    assert stored["node_count"] == 3
    assert {n["id"]: n["status"] for n in stored["node_executions"]} == {
        "a": "succeeded",
        "b": "succeeded",
        "c": "succeeded",
    }
    assert stored["total_tokens"] == 940


def test_duplicates_within_one_batch_count_once(client: TestClient, key: str) -> None:
    body = batch(three_node_run("r1", status="running"), three_node_run("r1"))
    response = post(client, key, body)
    assert response.status_code == 200
    stored = get_run(client, key, "r1")
    assert stored["status"] == "succeeded"
    assert stored["node_count"] == 3


def test_a_batch_with_one_bad_run_stores_nothing(client: TestClient, key: str) -> None:
    bad = run("r2", [node("n1", start=5, end=1)])
    response = post(client, key, batch(three_node_run("r1"), bad, three_node_run("r3")))
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["detail"]]
    assert locs == [["body", "runs", 1, "node_executions", 0, "finished_at"]]
    assert list_runs_or_missing(client, key) == []


def list_runs_or_missing(client: TestClient, key: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/apps/support-bot/workflows/triage/runs", headers=auth(key))
    return [] if response.status_code == 404 else response.json()["data"]


def test_container_tokens_are_not_counted_twice(client: TestClient, key: str) -> None:
    nodes = [
        node(
            "it", "iteration_1", node_type="iteration", start=0, end=4, total_tokens=300, cost=0.3
        ),
        llm(
            "c1",
            node_id="llm_in",
            start=0,
            end=2,
            prompt=100,
            completion=50,
            parent_id="it",
            iteration_id="iteration_1",
            iteration_index=0,
            cost=0.15,
            total_tokens=150,
        ),
        llm(
            "c2",
            node_id="llm_in",
            start=2,
            end=4,
            prompt=100,
            completion=50,
            parent_id="it",
            iteration_id="iteration_1",
            iteration_index=1,
            cost=0.15,
            total_tokens=150,
        ),
        llm("top", start=4, end=5, prompt=10, completion=10, cost=0.01),
    ]
    assert post(client, key, batch(run("r1", nodes))).status_code == 200
    stored = get_run(client, key, "r1")
    assert stored["total_tokens"] == 320
    assert stored["cost"] == pytest.approx(0.31)
    # A new run's totals are computed in Python, a known run's in SQL: both must agree.
    assert post(client, key, batch(run("r1", nodes))).status_code == 200
    assert get_run(client, key, "r1") == stored
    # Children count when their container reports nothing itself (as the SDK records them).
    bare = [
        node("it", "iteration_1", node_type="iteration", start=0, end=4),
        llm("c1", start=0, end=2, prompt=100, completion=50, parent_id="it", cost=0.15),
        llm("c2", start=2, end=4, prompt=100, completion=50, parent_id="it", cost=0.15),
    ]
    assert post(client, key, batch(run("r2", bare))).status_code == 200
    stored = get_run(client, key, "r2")
    assert stored["total_tokens"] == 300
    assert stored["cost"] == pytest.approx(0.30)


def test_reported_run_total_wins(client: TestClient, key: str) -> None:
    assert post(client, key, batch(run("r1", [llm("n1")], total_tokens=5000))).status_code == 200
    assert get_run(client, key, "r1")["total_tokens"] == 5000


def test_cost_sources(client: TestClient, key: str) -> None:
    nodes = [
        llm("estimated", start=0, end=1),
        llm("reported", start=1, end=2, cost=0.25),
        llm("unpriced", start=2, end=3, model_name="in-house-model-7b", model_provider="acme"),
        node("no-model", start=3, end=4),
        node("no-usage", start=4, end=5, node_type="llm", model_name="gpt-4o"),
        llm("plugin", start=5, end=6, model_provider="langgenius/openai/openai"),
    ]
    assert post(client, key, batch(run("r1", nodes))).status_code == 200
    stored = get_run(client, key, "r1")
    by_id = {n["id"]: n for n in stored["node_executions"]}
    assert {k: v["cost_source"] for k, v in by_id.items()} == {
        "estimated": "estimated",
        "reported": "reported",
        "unpriced": "unpriced",
        "no-model": "none",
        "no-usage": "unpriced",
        "plugin": "estimated",
    }
    assert by_id["unpriced"]["cost"] is None  # never a silent 0
    assert by_id["plugin"]["cost"] == by_id["estimated"]["cost"]
    assert stored["unpriced_node_executions"] == 2


def test_naive_and_offset_times_are_stored_as_utc(client: TestClient, key: str) -> None:
    body = run("r1", [node("n1", start=0, end=1)])
    body["started_at"] = "2026-11-01T10:00:00"
    body["finished_at"] = "2026-11-01T12:00:05+02:00"
    assert post(client, key, batch(body)).status_code == 200
    stored = get_run(client, key, "r1")
    assert stored["started_at"] == "2026-11-01T10:00:00Z"
    assert stored["finished_at"] == "2026-11-01T10:00:05Z"


def test_list_runs_pages_newest_first(client: TestClient, key: str) -> None:
    runs = [run(f"r{i:02d}", start=i * 60, end=i * 60 + 5) for i in range(25)]
    runs.append(run("failed", start=3000, end=3001, status="failed"))
    assert post(client, key, batch(*runs)).status_code == 200
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        response = client.get(
            "/api/v1/apps/support-bot/workflows/triage/runs", params=params, headers=auth(key)
        )
        page = response.json()
        seen += [r["id"] for r in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["failed"] + [f"r{i:02d}" for i in reversed(range(25))]
    assert [r["id"] for r in list_runs(client, key, status="failed")] == ["failed"]


def test_bad_cursor_and_limit_are_422(client: TestClient, key: str) -> None:
    assert post(client, key, batch(run("r1"))).status_code == 200
    url = "/api/v1/apps/support-bot/workflows/triage/runs"
    bad_cursor = client.get(url, params={"cursor": "!!"}, headers=auth(key))
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["detail"][0]["loc"] == ["query", "cursor"]
    assert client.get(url, params={"limit": 0}, headers=auth(key)).status_code == 422
    assert client.get(url, params={"limit": 5000}, headers=auth(key)).status_code == 422
    assert client.get(url, params={"status": "done"}, headers=auth(key)).status_code == 422


def test_a_run_cannot_move_to_another_workflow(client: TestClient, key: str) -> None:
    assert post(client, key, batch(run("r1"))).status_code == 200
    response = post(client, key, batch(run("r1", workflow_id="other")))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "runs", 0, "workflow_id"]


def test_a_finished_node_reported_again_keeps_what_only_the_first_report_knew(
    client: TestClient, key: str
) -> None:
    """Two sources of one run (Dify's database and its trace) know different details."""
    first = node("n1", "step", start=0, end=1, predecessor_node_id="start", iteration_id="it")
    first["error"] = "Rate limit reached"
    assert post(client, key, batch(run("r1", [first]))).status_code == 200
    second = node("n1", "step", start=0, end=1, title="Step")
    assert post(client, key, batch(run("r1", [second]))).status_code == 200
    stored = get_run(client, key, "r1")["node_executions"][0]
    assert (stored["predecessor_node_id"], stored["iteration_id"]) == ("start", "it")
    assert stored["title"] == "Step"
    assert stored["error"] is None  # an error is the report's own, never carried over
    # A report of a later stage replaces the details: a running node, then finished.
    running = node("n2", "step", start=0, end=None, status="running", predecessor_node_id="a")
    assert post(client, key, batch(run("r2", [running], status="running"))).status_code == 200
    done = node("n2", "step", start=0, end=1, title="Step")
    assert post(client, key, batch(run("r2", [done]))).status_code == 200
    assert get_run(client, key, "r2")["node_executions"][0]["predecessor_node_id"] is None


def test_a_truncated_node_execution_says_so(client: TestClient, key: str) -> None:
    """`truncated` is kept with the node's details and read back; false when not reported."""
    nodes = [
        llm("n1", node_id="digest", start=0, end=2, truncated=True),
        node("n2", "step", start=2, end=3),
    ]
    assert post(client, key, batch(run("r1", nodes))).status_code == 200
    stored = get_run(client, key, "r1")["node_executions"]
    assert [(n["id"], n["truncated"]) for n in stored] == [("n1", True), ("n2", False)]
    # A second source that does not know (Dify's trace after its database) keeps the mark.
    again = [llm("n1", node_id="digest", start=0, end=2)]
    assert post(client, key, batch(run("r1", again))).status_code == 200
    assert get_run(client, key, "r1")["node_executions"][0]["truncated"] is True
    bad = post(client, key, batch(run("r2", [node("n1", truncated="maybe")])))
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "runs", 0, "node_executions", 0, "truncated"]


def test_currencies_are_stored_as_iso_codes(client: TestClient, key: str) -> None:
    """Dify writes RMB for the renminbi; its ISO 4217 code is CNY (issue 15, item 1)."""
    nodes = [
        node("k", "kb", node_type="knowledge-retrieval", cost=0.5, currency="RMB"),
        node("t", "tool", cost=0.25, currency="cny"),
    ]
    post(client, key, batch(run("r-cny", nodes)))
    stored = {n["id"]: n for n in get_run(client, key, "r-cny")["node_executions"]}
    assert (stored["k"]["currency"], stored["t"]["currency"]) == ("CNY", "CNY")
    found = get_run(client, key, "r-cny")
    assert (found["cost"], found["currency"]) == (0.75, "CNY")


def test_a_report_cannot_start_after_the_end_already_stored(client: TestClient, key: str) -> None:
    """A finished node (or run) reported again without its end keeps the stored end; a start
    after that end would store one ending before it began, and the critical path then failed
    (a 500 that schemathesis found): a 422 names the start, and nothing is stored."""
    first = run("r1", [node("n1", start=0, end=2), node("n2", start=2, end=3)], end=10)
    assert post(client, key, batch(first)).status_code == 200
    for status in ("retry", "succeeded", "failed"):
        n1 = node("n1", start=5, end=None, status=status)
        again = run("r1", [node("n2", start=2, end=3), n1], end=None)
        response = post(client, key, batch(run("other"), again))
        assert response.status_code == 422, (status, response.text)
        (problem,) = response.json()["detail"]
        assert problem["loc"] == ["body", "runs", 1, "node_executions", 1, "started_at"]
        assert "2026-11-01T10:00:02+00:00" in problem["msg"]
    response = post(client, key, batch(run("r1", [], start=12, end=None)))
    assert response.status_code == 422
    assert [p["loc"] for p in response.json()["detail"]] == [["body", "runs", 0, "started_at"]]
    assert times(get_run(client, key, "r1")) == times(first)
    assert [r["id"] for r in list_runs(client, key)] == ["r1"]  # "other" was not stored
    # A report that restates its end, or starts before the stored end, is taken as before.
    n1, n2 = node("n1", start=5, end=6), node("n2", start=1, end=None, status="failed")
    assert post(client, key, batch(run("r1", [n1, n2], start=1, end=None))).status_code == 200
    kept = {"finished_at": first["node_executions"][1]["finished_at"]}
    expected = run("r1", [n1, {**n2, **kept}], start=1, end=10)
    assert times(get_run(client, key, "r1")) == times(expected)


def times(report: dict[str, Any]) -> list[tuple[str, datetime | None, datetime | None]]:
    """The start and end of a run and of its node executions, as instants."""

    def instant(value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    items = [report, *sorted(report["node_executions"], key=lambda n: n["id"])]
    return [(i["id"], instant(i["started_at"]), instant(i.get("finished_at"))) for i in items]
