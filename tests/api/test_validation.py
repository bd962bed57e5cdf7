"""Bad input gets a clear 4xx naming the field, and nothing is written."""

from __future__ import annotations

import gzip
import re
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from flowscope.config import Settings
from flowscope.server import create_app
from tests.conftest import KeyFactory, auth
from tests.factories import batch, llm, node, run


@pytest.fixture
def key(make_key: KeyFactory) -> str:
    return make_key("ingest")


def stored_runs(client: TestClient, make_key: KeyFactory) -> int:
    reader = make_key("read")
    response = client.get("/api/v1/apps/support-bot/workflows/triage/runs", headers=auth(reader))
    return 0 if response.status_code == 404 else len(response.json()["data"])


def with_node(**fields: Any) -> dict[str, Any]:
    return batch(run("ok", [node("n0")]), run("bad", [llm("n1", **fields)]))


INVALID = [
    ("unknown run status", batch(run("r", status="done")), ["body", "runs", 0, "status"]),
    (
        "unknown node status",
        with_node(status="ok"),
        ["body", "runs", 1, "node_executions", 0, "status"],
    ),
    (
        "run finished before start",
        batch(run("r", start=10, end=5)),
        ["body", "runs", 0, "finished_at"],
    ),
    (
        "negative tokens",
        with_node(prompt=-1),
        ["body", "runs", 1, "node_executions", 0, "prompt_tokens"],
    ),
    ("negative cost", with_node(cost=-0.1), ["body", "runs", 1, "node_executions", 0, "cost"]),
    (
        "negative elapsed",
        with_node(elapsed_ms=-5),
        ["body", "runs", 1, "node_executions", 0, "elapsed_ms"],
    ),
    (
        "negative retry count",
        with_node(retry_count=-1),
        ["body", "runs", 1, "node_executions", 0, "retry_count"],
    ),
    ("run id too long", batch(run("x" * 256)), ["body", "runs", 0, "id"]),
    (
        "node id too long",
        with_node(node_id="n" * 256),
        ["body", "runs", 1, "node_executions", 0, "node_id"],
    ),
    ("empty run id", batch(run("")), ["body", "runs", 0, "id"]),
    (
        "missing started_at",
        batch({k: v for k, v in run("r").items() if k != "started_at"}),
        ["body", "runs", 0, "started_at"],
    ),
    ("bad timestamp", batch(run("r", started_at="yesterday")), ["body", "runs", 0, "started_at"]),
    # Bounds (issue 15, D3, D4, D7): each of these was stored, then answered 500 or skewed
    # every figure after it.
    (
        "a start in year 0 in UTC",
        batch(run("r", started_at="0001-01-01T00:30:00+01:00")),
        ["body", "runs", 0, "started_at"],
    ),
    (
        "an end in year 10000 in UTC",
        batch(run("r", finished_at="9999-12-31T23:30:00-01:00")),
        ["body", "runs", 0, "finished_at"],
    ),
    (
        "a node before 1970",
        with_node(started_at="1969-12-31T23:59:59Z"),
        ["body", "runs", 1, "node_executions", 0, "started_at"],
    ),
    (
        "tokens past 64-bit sums",
        with_node(prompt=2**40 + 1),
        ["body", "runs", 1, "node_executions", 0, "prompt_tokens"],
    ),
    (
        "a run total past int64",
        batch(run("r", total_tokens=2**63)),
        ["body", "runs", 0, "total_tokens"],
    ),
    (
        "retries past a 32-bit column",
        with_node(retry_count=2**40),
        ["body", "runs", 1, "node_executions", 0, "retry_count"],
    ),
    (
        "an elapsed time of 1e300 ms",
        with_node(elapsed_ms=1e300),
        ["body", "runs", 1, "node_executions", 0, "elapsed_ms"],
    ),
    ("a cost of 1e308", with_node(cost=1e308), ["body", "runs", 1, "node_executions", 0, "cost"]),
    ("empty batch", {"runs": []}, ["body", "runs"]),
    ("no runs key", {"run": []}, ["body", "runs"]),
]


@pytest.mark.parametrize(("case", "body", "loc"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_items_are_named(
    client: TestClient, key: str, make_key: KeyFactory, case: str, body: Any, loc: list[Any]
) -> None:
    response = client.post("/api/v1/runs", json=body, headers=auth(key))
    assert response.status_code == 422, response.text
    assert loc in [e["loc"] for e in response.json()["detail"]]
    assert stored_runs(client, make_key) == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_rejected(
    client: TestClient, key: str, make_key: KeyFactory, literal: str
) -> None:
    body = orjson.dumps(with_node(cost=1.0)).replace(b'"cost":1.0', f'"cost":{literal}'.encode())
    response = client.post(
        "/api/v1/runs", content=body, headers={**auth(key), "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert ["body", "runs", 1, "node_executions", 0, "cost"] in [
        e["loc"] for e in response.json()["detail"]
    ]
    assert stored_runs(client, make_key) == 0


def test_every_bad_item_is_listed(client: TestClient, key: str) -> None:
    body = batch(run("a", status="nope"), run("b"), run("c", [node("n", start=3, end=1)]))
    response = client.post("/api/v1/runs", json=body, headers=auth(key))
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["detail"]]
    assert ["body", "runs", 0, "status"] in locs
    assert ["body", "runs", 2, "node_executions", 0, "finished_at"] in locs
    assert all(loc[2] != 1 for loc in locs)


def test_not_json_is_400(client: TestClient, key: str) -> None:
    response = client.post(
        "/api/v1/runs",
        content=b"{not json",
        headers={**auth(key), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


def test_empty_body_is_400(client: TestClient, key: str) -> None:
    response = client.post(
        "/api/v1/runs", content=b"", headers={**auth(key), "Content-Type": "application/json"}
    )
    assert response.status_code == 400


def test_wrong_content_type_is_415(client: TestClient, key: str) -> None:
    response = client.post(
        "/api/v1/runs", content=b"runs=1", headers={**auth(key), "Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]


def test_gzip_body_is_accepted(client: TestClient, key: str, make_key: KeyFactory) -> None:
    body = gzip.compress(orjson.dumps(batch(run("r1", [node("n1")]))))
    response = client.post(
        "/api/v1/runs",
        content=body,
        headers={**auth(key), "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert stored_runs(client, make_key) == 1


@pytest.fixture
def small_client(db_url: str) -> Any:
    app = create_app(Settings(database_url=db_url, auto_migrate=False, max_body_bytes=2000))
    with TestClient(app) as test_client:
        yield test_client


def test_body_over_the_limit_is_413(small_client: TestClient, key: str) -> None:
    body = orjson.dumps(batch(*[run(f"r{i}", [node("n")]) for i in range(20)]))
    assert len(body) > 2000
    response = small_client.post(
        "/api/v1/runs", content=body, headers={**auth(key), "Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_gzip_bomb_is_413_after_decompression(small_client: TestClient, key: str) -> None:
    payload = orjson.dumps(batch(run("r1", [node("n", title="x" * 50_000)])))
    body = gzip.compress(payload)
    assert len(body) < 2000 < len(payload)
    response = small_client.post(
        "/api/v1/runs",
        content=body,
        headers={**auth(key), "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413
    assert "decompression" in response.json()["detail"]


def test_too_many_runs_in_one_request_is_422(db_url: str, key: str, make_key: KeyFactory) -> None:
    app = create_app(Settings(database_url=db_url, auto_migrate=False, max_runs_per_request=2))
    with TestClient(app) as limited:
        body = batch(run("r1"), run("r2"), run("r3"))
        response = limited.post("/api/v1/runs", json=body, headers=auth(key))
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "runs"]
        assert "at most 2 runs" in response.json()["detail"][0]["msg"]
        assert (
            limited.post(
                "/api/v1/runs", json=batch(run("r1"), run("r2")), headers=auth(key)
            ).status_code
            == 200
        )


def test_nul_characters_are_named_not_a_server_error(
    client: TestClient, key: str, make_key: KeyFactory
) -> None:
    """PostgreSQL cannot store NUL; it was a 500, which the SDK retried forever (D2)."""
    body = batch(run("ok", [node("n0")]), run("bad", [llm("n1", title="a\x00b")], error="e\x00"))
    response = client.post("/api/v1/runs", json=body, headers=auth(key))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [e["loc"] for e in detail] == [
        ["body", "runs", 1, "error"],
        ["body", "runs", 1, "node_executions", 0, "title"],
    ]
    assert {e["type"] for e in detail} == {"string_nul"}
    assert stored_runs(client, make_key) == 0
    # An escaped backslash before u0000 is text, not a NUL.
    text = orjson.dumps(batch(run("fine", [llm("n1", title="C:\\u0000")])))
    headers = {**auth(key), "Content-Type": "application/json"}
    assert client.post("/api/v1/runs", content=text, headers=headers).status_code == 200


def test_nul_characters_in_parameters_and_small_bodies(
    client: TestClient, key: str, make_key: KeyFactory
) -> None:
    reader = make_key("read")
    response = client.get("/api/v1/runs/a%00b", headers=auth(reader))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "run_id"]
    response = client.get("/api/v1/apps/a/workflows?triggered_from=%00", headers=auth(reader))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "triggered_from"]
    lookup = {"app_id": "a", "workflow_id": "w", "node_id": "n\x00", "node_type": "code"}
    response = client.post("/api/v1/cache/lookup", json={**lookup, "inputs": {}}, headers=auth(key))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "node_id"]
    admin = make_key("admin")
    response = client.post(
        "/api/v1/keys", json={"name": "x\x00", "role": "read"}, headers=auth(admin)
    )
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "name"]


@pytest.mark.parametrize(
    ("path", "loc"),
    [
        ("/api/v1/apps/a/workflows?start=0001-01-01T00:30:00%2B01:00", ["query", "start"]),
        (
            "/api/v1/apps/a/workflows/w/performance/summary?end=9999-12-31T23:30:00-01:00",
            ["query", "end"],
        ),
        ("/api/v1/apps/a/workflows/w/cache/statistics?start=0001-01-01", ["query", "start"]),
        (
            f"/api/v1/apps/a/workflows/w/optimization/recommendations/{2**63}",
            ["path", "recommendation_id"],
        ),
    ],
)
def test_windows_and_ids_out_of_range_are_named(
    client: TestClient, make_key: KeyFactory, path: str, loc: list[str]
) -> None:
    response = client.get(path, headers=auth(make_key("admin")))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc


def test_ids_and_windows_in_bodies_and_deletes(client: TestClient, make_key: KeyFactory) -> None:
    admin = make_key("admin")
    response = client.delete(f"/api/v1/keys/{2**64}", headers=auth(admin))
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["path", "key_id"]
    client.post("/api/v1/runs", json=batch(run("r1")), headers=auth(make_key("ingest")))
    response = client.post(
        "/api/v1/apps/support-bot/workflows/triage/optimization/recommendations",
        json={"end": "9999-12-31T23:30:00-01:00"},
        headers=auth(admin),
    )
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "end"]


def test_undecodable_json_bodies_are_400_and_documented(
    client: TestClient, make_key: KeyFactory
) -> None:
    """Every operation taking a JSON body answers 400 `{"detail": "..."}` to bytes that are not
    UTF-8, and its OpenAPI entry says so (schemathesis found the 400 undocumented)."""
    headers = {**auth(make_key("admin")), "Content-Type": "application/json"}
    answered = {}
    for path, operations in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        for method, operation in operations.items():
            if "application/json" not in operation.get("requestBody", {}).get("content", {}):
                continue
            url = re.sub(r"\{[a-z_]+\}", "1", path)
            response = client.request(method, url, content=b'{"name": "\xff"}', headers=headers)
            detail = response.json().get("detail")
            documented = "400" in operation["responses"]
            answered[f"{method.upper()} {path}"] = (response.status_code, type(detail), documented)
    assert len(answered) == 10
    # OTLP answers in its own shape (google.rpc.Status), documented with the route.
    assert answered.pop("POST /v1/traces")[::2] == (400, True)
    assert {name: got for name, got in answered.items() if got != (400, str, True)} == {}
