"""Signing in and out, and the home page, over HTTP (in-process, both databases)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from flowscope.demo.workflows import demo_workflows
from tests.web.conftest import form_token, sign_in


def test_pages_redirect_to_sign_in_and_back(client: TestClient, demo_keys: dict[str, str]) -> None:
    response = client.get("/?window=30d", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2F%3Fwindow%3D30d"
    response = client.post(
        "/login", data={"key": demo_keys["read"], "next": "/?window=30d"}, follow_redirects=False
    )
    assert (response.status_code, response.headers["location"]) == (303, "/?window=30d")
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http here; https sets it
    assert demo_keys["read"] not in cookie  # the cookie holds a session token, not the key


def test_https_sessions_get_secure_cookies(client: TestClient, demo_keys: dict[str, str]) -> None:
    response = client.post(
        "/login",
        data={"key": demo_keys["read"]},
        headers={"x-forwarded-proto": "https"},
        follow_redirects=False,
    )
    assert "Secure" in response.headers["set-cookie"]


def test_wrong_and_ingest_keys_are_refused(client: TestClient, demo_keys: dict[str, str]) -> None:
    wrong = client.post("/login", data={"key": "fsk_not-a-key"}, follow_redirects=False)
    assert wrong.status_code == 401
    assert "unknown or revoked" in wrong.text
    ingest = client.post("/login", data={"key": demo_keys["ingest"]}, follow_redirects=False)
    assert ingest.status_code == 403
    assert "may only ingest" in ingest.text
    assert client.get("/", follow_redirects=False).status_code == 303


def test_open_redirects_are_not_followed(client: TestClient, demo_keys: dict[str, str]) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = client.post(
            "/login", data={"key": demo_keys["read"], "next": target}, follow_redirects=False
        )
        assert response.headers["location"] == "/"


def test_home_lists_every_demo_workflow_with_figures(web: TestClient) -> None:
    html = web.get("/?window=30d").text
    for workflow in demo_workflows():
        assert f'data-workflow="{workflow.workflow_id}"' in html
        assert workflow.app_id in html
    assert '<svg class="spark"' in html


def test_sign_out_needs_the_form_token_and_ends_the_session(web: TestClient) -> None:
    html = web.get("/").text
    refused = web.post("/logout", data={"csrf": "forged"}, follow_redirects=False)
    assert refused.status_code == 403
    cross_site = web.post(
        "/logout",
        data={"csrf": form_token(html)},
        headers={"origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert cross_site.status_code == 403
    assert web.get("/", follow_redirects=False).status_code == 200
    response = web.post("/logout", data={"csrf": form_token(html)}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert web.get("/", follow_redirects=False).status_code == 303


def test_revoking_the_key_ends_its_sessions(web: TestClient, demo_keys: dict[str, str]) -> None:
    admin = demo_keys["admin"]
    keys = web.get("/api/v1/keys", headers={"Authorization": f"Bearer {admin}"}).json()["data"]
    (read_key,) = [k for k in keys if k["name"] == "web read"]
    revoked = web.delete(
        f"/api/v1/keys/{read_key['id']}", headers={"Authorization": f"Bearer {admin}"}
    )
    assert revoked.status_code == 204
    assert web.get("/", follow_redirects=False).status_code == 303


def test_a_foreign_tenant_sees_none_of_the_demo(
    client: TestClient, demo_keys: dict[str, str]
) -> None:
    html = sign_in(client, demo_keys["foreign"]).get("/?window=30d").text
    assert "support-assistant" not in html
    assert "No runs recorded" in html


def test_a_bad_custom_window_says_why_and_falls_back(web: TestClient) -> None:
    html = web.get("/?window=custom&start=yesterday").text
    assert "start must be a date" in html
    html = web.get("/?window=custom&start=2026-01-01&end=2025-01-01").text
    assert "start must be before end" in html
