"""Signing in and out, and the home page, over HTTP (in-process, both databases)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from flowscope.demo.workflows import demo_workflows
from tests.web.conftest import LOGIN_COOKIE, form_token, post_login, sign_in


def test_pages_redirect_to_sign_in_and_back(client: TestClient, demo_keys: dict[str, str]) -> None:
    response = client.get("/?window=30d", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2F%3Fwindow%3D30d"
    response = post_login(client, demo_keys["read"], "/?window=30d")
    assert (response.status_code, response.headers["location"]) == (303, "/?window=30d")
    cookie = next(c for c in response.headers.get_list("set-cookie") if LOGIN_COOKIE not in c)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http here; https sets it
    assert demo_keys["read"] not in cookie  # the cookie holds a session token, not the key


def test_https_sessions_get_secure_cookies(client: TestClient, demo_keys: dict[str, str]) -> None:
    response = post_login(client, demo_keys["read"], headers={"x-forwarded-proto": "https"})
    session = [c for c in response.headers.get_list("set-cookie") if LOGIN_COOKIE not in c]
    assert session and "Secure" in session[0]


def test_a_sign_in_posted_without_its_form_token_is_refused(
    client: TestClient, demo_keys: dict[str, str]
) -> None:
    """Login CSRF: another site's form cannot sign this browser in to the attacker's tenant."""
    forged = client.post("/login", data={"key": demo_keys["read"]}, follow_redirects=False)
    assert forged.status_code == 403 and "sign in again" in forged.text
    assert all(LOGIN_COOKIE in c for c in forged.headers.get_list("set-cookie"))
    assert client.get("/", follow_redirects=False).status_code == 303  # not signed in
    client.cookies.set(LOGIN_COOKIE, "guessed", path="/login")
    wrong = {"key": demo_keys["read"], "login_token": "other"}
    assert client.post("/login", data=wrong, follow_redirects=False).status_code == 403


def test_wrong_and_ingest_keys_are_refused(client: TestClient, demo_keys: dict[str, str]) -> None:
    wrong = post_login(client, "fsk_not-a-key")
    assert wrong.status_code == 401
    assert "unknown or revoked" in wrong.text
    ingest = post_login(client, demo_keys["ingest"])
    assert ingest.status_code == 403
    assert "may only ingest" in ingest.text
    assert client.get("/", follow_redirects=False).status_code == 303


def test_open_redirects_are_not_followed(client: TestClient, demo_keys: dict[str, str]) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = post_login(client, demo_keys["read"], target)
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


def test_security_headers_and_docs_served_without_a_cdn(web: TestClient) -> None:
    page = web.get("/?window=30d")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    api = web.get("/healthz")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.headers  # JSON, not a page
    docs = web.get("/docs")
    assert docs.status_code == 200 and "cdn." not in docs.text
    assets = re.findall(r'(?:src|href)="(/static-offline-docs/[^"]+)"', docs.text)
    assert len(assets) >= 2
    for asset in assets:
        assert web.get(asset).status_code == 200, asset
