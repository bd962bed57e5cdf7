"""The cache endpoints over HTTP, on SQLite and PostgreSQL (the `sql://` backend)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowscope.cache.keys import cache_key
from tests.conftest import KeyFactory, auth

WF = "/api/v1/apps/support-bot/workflows/triage/cache"
RETRIEVAL = {
    "app_id": "support-bot",
    "workflow_id": "triage",
    "node_id": "kb_1",
    "node_type": "knowledge-retrieval",
    "config": {"dataset_ids": ["d1"], "top_k": 4},
    "inputs": {"query": "Where is my order?"},
}


def llm(temperature: float) -> dict[str, Any]:
    config = {"model": {"provider": "openai", "name": "gpt-4o-mini"}, "temperature": temperature}
    return {**RETRIEVAL, "node_id": "llm_1", "node_type": "llm", "config": config}


def post(client: TestClient, key: str, path: str, body: dict[str, Any], status: int = 200) -> Any:
    response = client.post(path, json=body, headers=auth(key))
    assert response.status_code == status, response.text
    return response.json()


def test_a_stored_result_is_a_hit_until_invalidated(
    client: TestClient, make_key: KeyFactory
) -> None:
    key = make_key(role="admin")
    miss = post(client, key, "/api/v1/cache/lookup", RETRIEVAL)
    assert miss["hit"] is False and miss["cacheable"] is True
    assert miss["key"] == cache_key(tenant="acme", **RETRIEVAL)

    stored = post(
        client,
        key,
        "/api/v1/cache/store",
        {**RETRIEVAL, "value": {"chunks": ["a", "é"]}, "elapsed_ms": 120},
    )
    assert stored["stored"] is True and stored["key"] == miss["key"]
    expires = datetime.fromisoformat(stored["expires_at"])
    now = datetime.now(UTC)
    assert now + timedelta(minutes=59) < expires <= now + timedelta(hours=1, seconds=5)  # 1 h

    hit = post(client, key, "/api/v1/cache/lookup", RETRIEVAL)
    assert hit["hit"] is True and hit["value"] == {"chunks": ["a", "é"]}
    # Other inputs, another node or another tenant: not the same entry.
    other_inputs = {**RETRIEVAL, "inputs": {"query": "Where is my refund?"}}
    assert post(client, key, "/api/v1/cache/lookup", other_inputs)["hit"] is False
    globex = make_key(role="ingest", tenant="globex")
    assert post(client, globex, "/api/v1/cache/lookup", RETRIEVAL)["hit"] is False

    gone = post(client, key, f"{WF}/invalidate", {"node_id": "kb_1"})
    assert gone == {"invalidated": 1}
    assert post(client, key, "/api/v1/cache/lookup", RETRIEVAL)["hit"] is False


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (llm(0.7), "temperature"),
        (
            {**RETRIEVAL, "node_type": "http-request", "config": {"method": "POST", "url": "u"}},
            "POST",
        ),
        ({**RETRIEVAL, "node_type": "code", "config": {"code": "x = 1"}}, "deterministic"),
    ],
)
def test_nodes_the_policy_does_not_allow_are_never_cached(
    client: TestClient, make_key: KeyFactory, body: dict[str, Any], reason: str
) -> None:
    key = make_key(role="ingest")
    found = post(client, key, "/api/v1/cache/lookup", body)
    assert found["cacheable"] is False and reason in found["reason"]
    stored = post(client, key, "/api/v1/cache/store", {**body, "value": 1})
    assert stored["stored"] is False and reason in stored["reason"]
    assert post(client, key, "/api/v1/cache/lookup", body)["hit"] is False


def test_cacheable_llm_get_and_failed_or_oversized_results(
    client: TestClient, make_key: KeyFactory
) -> None:
    key = make_key(role="ingest")
    assert post(client, key, "/api/v1/cache/lookup", llm(0))["cacheable"] is True
    get = {**RETRIEVAL, "node_type": "http-request", "config": {"method": "GET", "url": "u"}}
    assert post(client, key, "/api/v1/cache/store", {**get, "value": "ok"})["stored"] is True
    failed = post(client, key, "/api/v1/cache/store", {**llm(0), "value": "x", "status": "failed"})
    assert failed["stored"] is False and "failed" in failed["reason"]
    big = post(client, key, "/api/v1/cache/store", {**llm(0), "value": "x" * 1_000_001})
    assert big["stored"] is False and "over" in big["reason"]
    assert post(client, key, "/api/v1/cache/lookup", llm(0))["hit"] is False


def test_policy_get_put_and_its_effect(client: TestClient, make_key: KeyFactory) -> None:
    admin, ingest = make_key(role="admin"), make_key(role="ingest")
    # An unknown workflow is a 404, as on every route; a policy makes it known.
    assert client.get(f"{WF}/policy", headers=auth(admin)).status_code == 404
    assert client.put(f"{WF}/policy", json={}, headers=auth(admin)).status_code == 200
    defaults = client.get(f"{WF}/policy", headers=auth(admin)).json()  # before any run
    assert defaults["enabled"] is True and defaults["nodes"] == {}
    body = {"nodes": {"kb_1": {"ttl_seconds": 1}}, "ttl_seconds": {"llm": 600}}
    response = client.put(f"{WF}/policy", json=body, headers=auth(admin))
    assert response.status_code == 200, response.text
    policy = client.get(f"{WF}/policy", headers=auth(admin)).json()
    assert policy["enabled"] is True and policy["ttl_seconds"]["llm"] == 600
    assert policy["nodes"]["kb_1"]["ttl_seconds"] == 1
    # Fields left out keep their values.
    client.put(f"{WF}/policy", json={"ttl_seconds": {"code": 60}}, headers=auth(admin))
    policy = client.get(f"{WF}/policy", headers=auth(admin)).json()
    assert policy["ttl_seconds"]["llm"] == 600 and policy["nodes"]["kb_1"]["ttl_seconds"] == 1

    stored = post(client, ingest, "/api/v1/cache/store", {**RETRIEVAL, "value": 1})
    assert datetime.fromisoformat(stored["expires_at"]) <= datetime.now(UTC) + timedelta(seconds=2)
    time.sleep(1.2)  # let the 1-second entry expire: an expired entry is never returned
    assert post(client, ingest, "/api/v1/cache/lookup", RETRIEVAL)["hit"] is False
    assert post(client, admin, f"{WF}/cleanup", {}) == {"removed": 1}

    client.put(f"{WF}/policy", json={"enabled": False}, headers=auth(admin))
    found = post(client, ingest, "/api/v1/cache/lookup", RETRIEVAL)
    assert found["cacheable"] is False


@pytest.mark.parametrize(
    "body", [{"enabled": "yes"}, {"nodes": {"kb_1": {"ttl": 5}}}, {"ttl_seconds": {"llm": 0}}]
)
def test_a_bad_policy_is_422_and_changes_nothing(
    client: TestClient, make_key: KeyFactory, body: dict[str, Any]
) -> None:
    admin = make_key(role="admin")
    client.put(f"{WF}/policy", json={"ttl_seconds": {"llm": 600}}, headers=auth(admin))
    response = client.put(f"{WF}/policy", json=body, headers=auth(admin))
    assert response.status_code == 422, response.text
    assert client.get(f"{WF}/policy", headers=auth(admin)).json()["ttl_seconds"]["llm"] == 600


def test_roles_and_selectors(client: TestClient, make_key: KeyFactory) -> None:
    read, ingest, admin = make_key(role="read"), make_key(role="ingest"), make_key(role="admin")
    assert (
        client.post("/api/v1/cache/lookup", json=RETRIEVAL, headers=auth(read)).status_code == 403
    )
    assert client.get(f"{WF}/policy", headers=auth(ingest)).status_code == 403
    post(client, admin, "/api/v1/cache/store", {**RETRIEVAL, "value": 1})
    for body in ({}, {"node_id": "kb_1", "all": True}):
        post(client, admin, f"{WF}/invalidate", body, status=422)
    assert post(client, admin, f"{WF}/invalidate", {"all": True}) == {"invalidated": 1}
    elsewhere = "/api/v1/apps/support-bot/workflows/nope/cache/invalidate"
    post(client, admin, elsewhere, {"all": True}, status=404)  # an unknown workflow
    bad = {**RETRIEVAL, "inputs": {"n": 2**60}}
    found = post(client, ingest, "/api/v1/cache/lookup", bad)
    assert found["cacheable"] is False and "key" in found["reason"]


@pytest.fixture
def unreachable_cache(db_url: str) -> Iterator[TestClient]:
    from flowscope.config import Settings
    from flowscope.server import create_app

    settings = Settings(database_url=db_url, cache_url="redis://127.0.0.1:1/0", auto_migrate=False)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_an_unreachable_cache_never_fails_the_caller(
    unreachable_cache: TestClient, make_key: KeyFactory
) -> None:
    key = make_key(role="admin")
    client = unreachable_cache
    assert post(client, key, "/api/v1/cache/lookup", RETRIEVAL)["hit"] is False
    post(client, key, "/api/v1/cache/store", {**RETRIEVAL, "value": 1})
    assert post(client, key, "/api/v1/cache/lookup", RETRIEVAL)["hit"] is False
    assert client.app.state.cache.errors >= 2  # type: ignore[attr-defined]


def test_statistics_and_top_nodes_count_what_the_cache_saved(
    client: TestClient, make_key: KeyFactory
) -> None:
    ingest, read = make_key(role="ingest"), make_key(role="read")
    other = {**RETRIEVAL, "node_id": "kb_2", "inputs": {"query": "refund"}}
    post(
        client,
        ingest,
        "/api/v1/cache/store",
        {**RETRIEVAL, "value": 1, "elapsed_ms": 120, "cost": 0.01},
    )
    post(client, ingest, "/api/v1/cache/store", {**other, "value": 2, "elapsed_ms": 50})
    post(client, ingest, "/api/v1/cache/store", {**other, "value": "x" * 1_000_001})  # skipped
    for body in (RETRIEVAL, RETRIEVAL, RETRIEVAL, other):
        assert post(client, ingest, "/api/v1/cache/lookup", body)["hit"] is True
    for query in ("a", "b"):
        post(client, ingest, "/api/v1/cache/lookup", {**other, "inputs": {"query": query}})
    post(client, ingest, "/api/v1/cache/lookup", llm(0.7))  # not cacheable: not a lookup

    response = client.get(f"{WF}/statistics", params={"days": 7}, headers=auth(read))
    assert response.status_code == 200, response.text
    stats = response.json()
    assert (stats["lookups"], stats["hits"], stats["misses"]) == (6, 4, 2)
    assert stats["hit_rate"] == pytest.approx(4 / 6)
    assert (stats["stores"], stats["skipped"], stats["errors"]) == (2, 1, 0)
    assert (stats["entries"], stats["bytes"]) == (2, 2)  # the JSON values 1 and 2
    assert stats["time_saved_ms"] == pytest.approx(3 * 120 + 50)
    assert stats["cost_saved"] == pytest.approx(0.03)
    assert len(stats["daily"]) == 1 and stats["daily"][0]["hits"] == 4

    top = client.get(f"{WF}/top-nodes", params={"limit": 1}, headers=auth(read)).json()
    assert [n["node_id"] for n in top["data"]] == ["kb_1"]
    assert top["data"][0]["hit_rate"] == 1.0 and top["data"][0]["time_saved_ms"] == 360
    assert client.get(f"{WF}/statistics?days=0", headers=auth(read)).status_code == 422
    # The window of every figure route: start/end too, bad combinations named.
    now = datetime.now(UTC)
    around = {"start": (now - timedelta(hours=3)).isoformat(), "end": now.isoformat()}
    assert client.get(f"{WF}/statistics", params=around, headers=auth(read)).json()["hits"] == 4
    before = {
        "start": (now - timedelta(days=9)).isoformat(),
        "end": (now - timedelta(days=8)).isoformat(),
    }
    assert client.get(f"{WF}/statistics", params=before, headers=auth(read)).json()["hits"] == 0
    both = client.get(f"{WF}/top-nodes", params={"days": 7, **around}, headers=auth(read))
    assert both.status_code == 422
    assert both.json()["detail"][0]["loc"] == ["query", "days"]
    # The workflow never ran: the cache's use made it known. Another tenant's is not.
    globex = make_key(role="read", tenant="globex")
    for path in ("statistics", "top-nodes"):
        assert client.get(f"{WF}/{path}", headers=auth(globex)).status_code == 404


def test_a_hit_without_a_recorded_time_saves_the_nodes_median(
    client: TestClient, make_key: KeyFactory
) -> None:
    ingest = make_key(role="ingest")
    start = datetime.now(UTC) - timedelta(hours=2)
    nodes = [
        {"id": f"n{i}", "node_id": "kb_3", "node_type": "knowledge-retrieval",
         "status": "succeeded", "started_at": (start + timedelta(minutes=i)).isoformat(),
         "elapsed_ms": ms}
        for i, ms in enumerate((100.0, 200.0, 900.0))
    ]  # fmt: skip
    run = {"id": "r1", "app_id": "support-bot", "workflow_id": "triage", "status": "succeeded",
           "started_at": start.isoformat(), "elapsed_ms": 1000.0, "node_executions": nodes}  # fmt: skip
    post(client, ingest, "/api/v1/runs", {"runs": [run]})
    kb3 = {**RETRIEVAL, "node_id": "kb_3"}
    post(client, ingest, "/api/v1/cache/store", {**kb3, "value": 1})  # no elapsed_ms
    for _ in range(2):
        assert post(client, ingest, "/api/v1/cache/lookup", kb3)["hit"] is True
    stats = client.get(f"{WF}/statistics", headers=auth(make_key(role="read"))).json()
    assert stats["hits"] == 2
    assert stats["time_saved_ms"] == pytest.approx(2 * 200, rel=0.01)  # the median, 1% buckets


def test_default_ttls_from_settings_under_workflow_policies(
    db_url: str, make_key: KeyFactory
) -> None:
    from flowscope.cache.policy import PolicyError
    from flowscope.config import Settings
    from flowscope.server import create_app

    settings = Settings(
        database_url=db_url, auto_migrate=False, cache_ttl_seconds={"knowledge-retrieval": 120}
    )
    admin = make_key(role="admin")
    with TestClient(create_app(settings)) as client:
        stored = post(client, admin, "/api/v1/cache/store", {**RETRIEVAL, "value": 1})
        expires = datetime.fromisoformat(stored["expires_at"]) - datetime.now(UTC)
        assert timedelta(seconds=110) < expires <= timedelta(seconds=121)
        client.put(
            f"{WF}/policy", json={"ttl_seconds": {"knowledge-retrieval": 600}}, headers=auth(admin)
        )
        stored = post(client, admin, "/api/v1/cache/store", {**RETRIEVAL, "value": 2})
        expires = datetime.fromisoformat(stored["expires_at"]) - datetime.now(UTC)
        assert timedelta(seconds=590) < expires <= timedelta(seconds=601)
    with pytest.raises(PolicyError):
        create_app(Settings(database_url=db_url, cache_ttl_seconds={"llm": 0}))


def test_leases_let_one_caller_compute_a_miss(client: TestClient, make_key: KeyFactory) -> None:
    key = make_key(role="ingest")
    leased = {**RETRIEVAL, "lease_ms": 30_000}
    first = post(client, key, "/api/v1/cache/lookup", leased)
    second = post(client, key, "/api/v1/cache/lookup", leased)
    assert (first["hit"], first["lease"], second["lease"]) == (False, True, False)
    assert post(client, key, "/api/v1/cache/lookup", RETRIEVAL)["lease"] is None  # not asked
    # A failed computation gives the lease up: the next caller computes.
    post(client, key, "/api/v1/cache/store", {**RETRIEVAL, "value": None, "status": "failed"})
    assert post(client, key, "/api/v1/cache/lookup", leased)["lease"] is True
    post(client, key, "/api/v1/cache/store", {**RETRIEVAL, "value": 3})
    found = post(client, key, "/api/v1/cache/lookup", leased)
    assert (found["hit"], found["value"], found["lease"]) == (True, 3, None)
    post(client, key, "/api/v1/cache/lookup", {**RETRIEVAL, "lease_ms": 5}, status=422)
