"""The runs list and the run page in a real Chromium, against `flowscope serve` on the demo
data: paging, filtering, opening a run, its critical path; screenshots for the docs."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.servers import Server
from tests.web.conftest import browser_sign_in, screenshot

pytestmark = pytest.mark.e2e

RESEARCH = "/apps/research-copilot/workflows/deep-research"


def run_ids(page: Any) -> list[str]:
    rows = page.locator("table.runs tbody tr")
    return [rows.nth(i).get_attribute("data-run") for i in range(rows.count())]


def test_page_through_runs_and_open_one_with_its_critical_path(
    demo_server: tuple[Server, dict[str, str]], page: Any
) -> None:
    from playwright.sync_api import expect

    server, keys = demo_server
    base = server.url
    browser_sign_in(page, base, keys["read"])

    page.goto(f"{base}{RESEARCH}/runs?window=30d")
    expect(page.locator("table.runs tbody tr")).to_have_count(50)
    first = run_ids(page)
    screenshot(page, "runs")
    page.get_by_role("link", name="Next page").click()
    page.wait_for_url(re.compile(r"cursor="))
    second = run_ids(page)
    assert second and not set(first) & set(second)
    assert "window=30d" in page.url
    page.get_by_role("link", name="Newest runs").click()
    page.wait_for_url(re.compile(r"runs\?window=30d$"))
    assert run_ids(page) == first

    # A telling run: an iteration, a handled exception, a slow web search (filtered by form).
    page.get_by_label("Status").select_option("partial-succeeded")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"status=partial-succeeded"))
    row = page.locator("table.runs tbody tr").first
    expect(row.locator(".badge")).to_have_text("partial-succeeded")
    run_id = row.get_attribute("data-run")
    row.get_by_role("link").click()
    page.wait_for_url(re.compile(rf"/runs/{run_id}\?"))

    expect(page.get_by_role("heading", level=1)).to_contain_text(run_id)
    on_path = page.locator('table.nodes tr[data-critical="true"]')
    assert on_path.count() > 3
    # The path steps into the iteration: the items that held it up are marked too.
    assert page.locator('table.nodes tr.child[data-critical="true"]').count() > 0
    chart = page.get_by_role("img", name=re.compile(r"Waterfall of run"))
    expect(chart).to_be_visible()
    critical_bars = chart.locator("g.bar.critical")
    assert critical_bars.count() == on_path.count()
    assert chart.locator("g.bar.exception").count() >= 1
    # The highlight is a colour of its own (and a star in the label).
    highlighted = critical_bars.first.locator("rect").evaluate("e => getComputedStyle(e).fill")
    plain = chart.locator("g.bar.succeeded:not(.critical) rect").first
    assert highlighted != plain.evaluate("e => getComputedStyle(e).fill")
    expect(critical_bars.first.locator("text")).to_contain_text("★")
    screenshot(page, "run")

    page.set_viewport_size({"width": 390, "height": 844})
    expect(chart).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page itself must not scroll sideways; wide parts scroll inside"
    screenshot(page, "run-phone")


def test_the_runs_list_works_from_the_keyboard(
    demo_server: tuple[Server, dict[str, str]], page: Any
) -> None:
    server, keys = demo_server
    base = server.url
    browser_sign_in(page, base, keys["read"])
    page.goto(f"{base}{RESEARCH}/runs?window=30d")
    page.get_by_label("Status").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "version"
    target = run_ids(page)[0]
    for _ in range(10):  # apply, then the first run's link
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('tr')?.dataset.run ?? ''") == target:
            break
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/runs/{target}\?"))
    page.keyboard.press("Tab")  # the page is reachable from the keyboard from the top
    assert page.evaluate("document.activeElement.tagName") == "A"
