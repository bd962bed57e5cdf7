"""Signing in and the home page in a real Chromium: the demo workflows, a wrong key refused,
another tenant's workflow answered with 404, local times with UTC on hover, signing out."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from flowscope.demo.workflows import demo_workflows
from tests.servers import Server
from tests.web.conftest import browser_sign_in, screenshot

pytestmark = pytest.mark.e2e


def test_sign_in_and_see_every_demo_workflow(
    demo_server: tuple[Server, dict[str, str]], page: Any
) -> None:
    from playwright.sync_api import expect

    server, keys = demo_server
    page.goto(f"{server.url}/")
    expect(page).to_have_url(f"{server.url}/login?next=%2F")
    screenshot(page, "login")
    browser_sign_in(page, server.url, keys["read"])
    for workflow in demo_workflows():
        row = page.locator(f'tr[data-workflow="{workflow.workflow_id}"]')
        expect(row).to_have_count(1)
        expect(row.locator("svg.spark polyline").first).to_be_attached()
    # The figures are the API's for the same window.
    api = httpx.get(
        f"{server.url}/api/v1/apps/support-assistant/workflows",
        params={"days": 7},
        headers={"Authorization": f"Bearer {keys['read']}"},
    ).json()
    rag = next(w for w in api["data"] if w["workflow_id"] == "support-rag")
    cell = page.locator('tr[data-workflow="support-rag"] td[data-field="run_count"]')
    expect(cell).to_have_text(f"{rag['run_count']:,}")
    # Times are shown in the viewer's zone (Europe/Paris here), UTC on hover.
    last_run = page.locator('tr[data-workflow="support-rag"] time').first
    assert "UTC" not in last_run.inner_text()
    assert last_run.get_attribute("title").endswith(" UTC")
    page.get_by_role("link", name="30 days").click()
    expect(page).to_have_url(f"{server.url}/?window=30d")
    screenshot(page, "home")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "home-phone")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_a_wrong_key_is_refused(demo_server: tuple[Server, dict[str, str]], page: Any) -> None:
    from playwright.sync_api import expect

    server, _ = demo_server
    page.goto(f"{server.url}/login")
    page.get_by_label("API key").fill("fsk_this-is-not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked")
    page.goto(f"{server.url}/")
    expect(page).to_have_url(f"{server.url}/login?next=%2F")


def test_another_tenants_workflow_is_a_404_page(
    demo_server: tuple[Server, dict[str, str]], page: Any
) -> None:
    from playwright.sync_api import expect

    server, keys = demo_server
    browser_sign_in(page, server.url, keys["foreign"])
    expect(page.get_by_text("No runs recorded")).to_be_visible()
    response = page.goto(f"{server.url}/apps/support-assistant/workflows/support-rag")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("main table")).to_have_count(0)  # none of the demo's figures


def test_sign_out_ends_the_session(demo_server: tuple[Server, dict[str, str]], page: Any) -> None:
    from playwright.sync_api import expect

    server, keys = demo_server
    browser_sign_in(page, server.url, keys["read"])
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server.url}/login")
    page.goto(f"{server.url}/?window=24h")
    expect(page).to_have_url(f"{server.url}/login?next=%2F%3Fwindow%3D24h")
