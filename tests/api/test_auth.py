"""Keys, roles and tenant isolation on every route."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import KeyFactory, auth
from tests.factories import batch, node, run

RUN_URL = "/api/v1/runs/r1"
LIST_URL = "/api/v1/apps/support-bot/workflows/triage/runs"


def ingest(client: TestClient, key: str, *runs: dict) -> None:
    response = client.post("/api/v1/runs", json=batch(*runs), headers=auth(key))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "header",
    [None, "fsk_nope", "Bearer", "Bearer fsk_unknown", "Basic dXNlcjpwYXNz", "Bearer sk-other"],
)
def test_missing_or_bad_keys_are_401(client: TestClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    for method, url in [
        ("GET", RUN_URL),
        ("GET", LIST_URL),
        ("POST", "/api/v1/runs"),
        ("GET", "/api/v1/apps"),
        ("GET", "/api/v1/keys"),
    ]:
        response = client.request(method, url, headers=headers, json=batch(run("r1")))
        assert response.status_code == 401, (method, url)
        assert response.headers["www-authenticate"] == "Bearer"


def test_healthz_needs_no_key(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_roles(client: TestClient, make_key: KeyFactory) -> None:
    ingest_key, read_key, admin_key = make_key("ingest"), make_key("read"), make_key("admin")
    ingest(client, ingest_key, run("r1", [node("n1")]))
    ingest(client, admin_key, run("r2"))
    denied = client.post("/api/v1/runs", json=batch(run("r3")), headers=auth(read_key))
    assert denied.status_code == 403
    assert "role 'read'" in denied.json()["detail"]
    assert client.get(RUN_URL, headers=auth(ingest_key)).status_code == 403
    assert client.get(RUN_URL, headers=auth(read_key)).status_code == 200
    assert client.get(RUN_URL, headers=auth(admin_key)).status_code == 200
    assert client.get("/api/v1/keys", headers=auth(read_key)).status_code == 403
    assert client.get("/api/v1/keys", headers=auth(ingest_key)).status_code == 403
    assert client.get("/api/v1/keys", headers=auth(admin_key)).status_code == 200


def test_tenants_never_see_each_other(client: TestClient, make_key: KeyFactory) -> None:
    acme = make_key("admin", tenant="acme")
    globex = make_key("admin", tenant="globex")
    ingest(client, acme, run("r1", [node("n1")]))

    # Unknown and foreign ids look the same: 404.
    assert client.get(RUN_URL, headers=auth(globex)).status_code == 404
    assert client.get("/api/v1/runs/nope", headers=auth(globex)).status_code == 404
    assert client.get(LIST_URL, headers=auth(globex)).status_code == 404
    assert client.get(LIST_URL, headers=auth(acme)).status_code == 200
    assert client.get("/api/v1/apps", headers=auth(globex)).json()["data"] == []
    assert [a["app_id"] for a in client.get("/api/v1/apps", headers=auth(acme)).json()["data"]] == [
        "support-bot"
    ]

    # Run ids are each tenant's own (D8: a 422 told globex that acme had a run r1): globex's
    # r1 is another run, and acme's is untouched.
    mine = client.post(
        "/api/v1/runs", json=batch(run("r9"), run("r1", status="failed")), headers=auth(globex)
    )
    assert mine.status_code == 200, mine.text
    assert client.get(RUN_URL, headers=auth(acme)).json()["status"] == "succeeded"
    assert client.get(RUN_URL, headers=auth(globex)).json()["status"] == "failed"
    assert client.get("/api/v1/runs/r9", headers=auth(acme)).status_code == 404

    # The same app and workflow names in two tenants are two different workflows.
    ingest(client, globex, run("g1"))
    globex_runs = client.get(LIST_URL, headers=auth(globex)).json()["data"]
    assert sorted(r["id"] for r in globex_runs) == ["g1", "r1", "r9"]
    assert [r["id"] for r in client.get(LIST_URL, headers=auth(acme)).json()["data"]] == ["r1"]

    # Keys: each admin sees and revokes only its own tenant's keys.
    globex_keys = client.get("/api/v1/keys", headers=auth(globex)).json()["data"]
    assert {k["tenant"] for k in globex_keys} == {"globex"}
    acme_key_id = client.get("/api/v1/keys", headers=auth(acme)).json()["data"][0]["id"]
    assert client.delete(f"/api/v1/keys/{acme_key_id}", headers=auth(globex)).status_code == 404
    assert client.get(RUN_URL, headers=auth(acme)).status_code == 200


def test_key_management_over_http(client: TestClient, make_key: KeyFactory) -> None:
    admin = make_key("admin")
    created = client.post("/api/v1/keys", json={"name": "ci", "role": "read"}, headers=auth(admin))
    assert created.status_code == 201
    secret = created.json()["key"]
    assert secret.startswith("fsk_")
    listed = client.get("/api/v1/keys", headers=auth(admin)).json()["data"]
    assert all("key" not in k for k in listed)
    assert any(k["name"] == "ci" and secret.startswith(k["prefix"]) for k in listed)
    assert client.get("/api/v1/apps", headers=auth(secret)).status_code == 200
    key_id = created.json()["id"]
    assert client.delete(f"/api/v1/keys/{key_id}", headers=auth(admin)).status_code == 204
    assert client.get("/api/v1/apps", headers=auth(secret)).status_code == 401
    assert client.delete(f"/api/v1/keys/{key_id}", headers=auth(admin)).status_code == 404
    bad_role = client.post("/api/v1/keys", json={"name": "x", "role": "root"}, headers=auth(admin))
    assert bad_role.status_code == 422
