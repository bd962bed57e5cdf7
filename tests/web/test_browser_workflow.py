"""The workflow page in a real Chromium, against `flowscope serve` on the demo data: reached
from the home page, its figures against the API's, sorting the node table, dismissing a
recommendation; screenshots at desktop and phone widths for the docs."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from flowscope.web.templating import duration, integer, percent
from tests.conftest import auth
from tests.servers import Server
from tests.web.conftest import browser_sign_in, screenshot

pytestmark = pytest.mark.e2e

APP, WF = "support-assistant", "support-rag"
PAGE = f"/apps/{APP}/workflows/{WF}"
API = f"/api/v1/apps/{APP}/workflows/{WF}"


def p95_column(page: Any) -> list[float]:
    cells = page.locator('table.nodes tbody td[data-field="p95_ms"]')
    return [float(v) for v in cells.evaluate_all("cells => cells.map(c => c.dataset.value)")]


def node_order(page: Any) -> list[str]:
    rows = page.locator("table.nodes tbody tr")
    return [str(v) for v in rows.evaluate_all("rows => rows.map(r => r.dataset.node)")]


def test_open_a_workflow_check_figures_sort_nodes_and_dismiss(
    demo_server: tuple[Server, dict[str, str]], page: Any
) -> None:
    from playwright.sync_api import expect

    server, keys = demo_server
    base = server.url
    with httpx.Client(base_url=base, headers=auth(keys["admin"]), timeout=60) as api:
        generated = api.post(f"{API}/optimization/recommendations", json={"days": 7})
        assert generated.status_code == 200, generated.text
        assert generated.json()["data"], "the demo workflow should get recommendations"

        browser_sign_in(page, base, keys["admin"])
        page.get_by_role("link", name=WF, exact=True).click()
        page.wait_for_url(re.compile(rf"{PAGE}\?window=7d$"))
        expect(page.get_by_role("heading", level=1)).to_contain_text(WF)

        # The page's figures are the API's for the window the page shows.
        times = page.locator(".window-range time")
        window = {
            "start": times.nth(0).get_attribute("datetime"),
            "end": times.nth(1).get_attribute("datetime"),
        }
        summary = api.get(f"{API}/performance/summary", params=window).json()
        assert summary["run_count"] > 0
        for field, value, shown in (
            ("run_count", summary["run_count"], integer(summary["run_count"])),
            ("success_rate", summary["success_rate"], percent(summary["success_rate"])),
            ("p95_ms", summary["latency_ms"]["p95"], duration(summary["latency_ms"]["p95"])),
            ("p50_ms", summary["latency_ms"]["p50"], duration(summary["latency_ms"]["p50"])),
        ):
            card = page.locator(f'.card[data-field="{field}"]')
            assert float(card.get_attribute("data-value")) == pytest.approx(value, rel=1e-12)
            expect(card.locator(".value")).to_have_text(shown)
        nodes = api.get(f"{API}/performance/nodes", params=window).json()["data"]
        assert node_order(page) == [n["node_id"] for n in nodes]  # the service's order

        page.locator("details.evidence summary").first.click()  # show one evidence list
        screenshot(page, "workflow")

        # Sorting by p95: descending on the first press, ascending on the next (by keyboard).
        table = page.locator("table.nodes")
        # (The header's accessible name gains the ▼/▲ of its sort order: locate by text.)
        header = table.locator("thead th:has(button[data-sort]:text-is('p95'))")
        p95 = header.get_by_role("button")
        p95.click()
        expect(header).to_have_attribute("aria-sort", "descending")
        descending = p95_column(page)
        assert descending == sorted(descending, reverse=True)
        assert sorted(descending) == sorted(n["latency_ms"]["p95"] for n in nodes)
        assert node_order(page) != [n["node_id"] for n in nodes]  # it really moved
        p95.focus()
        page.keyboard.press("Enter")
        expect(header).to_have_attribute("aria-sort", "ascending")
        assert p95_column(page) == sorted(descending)

        # Dismiss the first active recommendation with a reason.
        first = page.locator('article.rec[data-status="active"]').first
        rec_id = first.get_attribute("data-recommendation")
        first.get_by_label("Reason for dismissing").fill("known: the provider's tail latency")
        first.get_by_role("button", name="Dismiss").click()
        page.wait_for_url(re.compile(rf"done=dismissed-{rec_id}"))
        expect(page.get_by_role("status")).to_contain_text(f"Recommendation {rec_id} dismissed")
        page.reload()
        gone = page.locator(f'article[data-recommendation="{rec_id}"]')
        expect(gone).to_have_count(0)
        page.get_by_role("link", name=re.compile(r"^Dismissed")).click()
        page.wait_for_url(re.compile(r"recs=dismissed"))
        dismissed = page.locator(f'article[data-recommendation="{rec_id}"]')
        expect(dismissed).to_contain_text("known: the provider's tail latency")
        expect(dismissed).to_contain_text("Dismissed by browser admin")
        detail = api.get(f"{API}/optimization/recommendations/{rec_id}").json()
        assert (detail["status"], detail["dismissed_by"]) == ("dismissed", "browser admin")


def test_the_workflow_page_fits_a_phone(
    demo_server: tuple[Server, dict[str, str]], browser: Any
) -> None:
    from playwright.sync_api import expect

    server, keys = demo_server
    context = browser.new_context(viewport={"width": 390, "height": 844}, timezone_id="UTC")
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        browser_sign_in(page, server.url, keys["read"])
        page.goto(f"{server.url}{PAGE}?window=7d")
        expect(
            page.get_by_role("img", name=re.compile(r"^p50 and p95 run latency"))
        ).to_be_visible()
        # Wide tables scroll inside their wrapper; the page itself never scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        wrap = page.locator(".table-wrap", has=page.locator("table.nodes"))
        assert wrap.evaluate("w => w.scrollWidth > w.clientWidth")
        assert page.locator("form.dismiss, form.invalidate").count() == 0  # a read key
        screenshot(page, "workflow-phone")
    finally:
        context.close()
