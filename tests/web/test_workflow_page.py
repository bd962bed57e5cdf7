"""The workflow page over HTTP (in-process, SQLite and PostgreSQL): its figures against the
REST API's, tenancy, the admin forms and their protection, empty states, and the trend chart."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowscope.web.svg.trend import Axis, Line, Marker, trend_chart
from flowscope.web.templating import duration, integer, percent
from tests.conftest import auth
from tests.factories import batch, llm, run
from tests.web.conftest import DEMO_END, form_token, sign_in

APP, WF = "support-assistant", "support-rag"
PAGE = f"/apps/{APP}/workflows/{WF}"
API = f"/api/v1/apps/{APP}/workflows/{WF}"
# A fixed window over the demo's last week: the page and the API read exactly the same hours.
START, END = (DEMO_END - timedelta(days=7)).isoformat(), (DEMO_END + timedelta(hours=1)).isoformat()
CUSTOM = {"window": "custom", "start": START, "end": END}


def section(html: str, name: str) -> str:
    """The HTML of the page section headed `name` (its heading's id without -heading)."""
    start = html.index(f'aria-labelledby="{name}-heading"')
    return html[start : html.index("</section>", start)]


def fields(html: str) -> dict[str, str]:
    """data-field -> data-value of the elements that carry both."""
    return dict(re.findall(r'data-field="([^"]+)" data-value="([^"]*)"', html))


def number(text: str) -> float | None:
    return float(text) if text else None


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-node="([^"]+)"', html)


def api_get(client: TestClient, key: str, path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()


def generate(client: TestClient, admin: str) -> list[dict[str, Any]]:
    """The advisor's recommendations for the demo workflow (over 30 days: enough runs)."""
    response = client.post(
        f"{API}/optimization/recommendations", json={"days": 30}, headers=auth(admin)
    )
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    assert data, "the demo workflow should get recommendations"
    return data


def articles(html: str) -> list[str]:
    return re.findall(r'<article class="rec" data-recommendation="(\d+)"', html)


def test_figures_equal_the_apis_for_the_same_window(
    web: TestClient, demo_keys: dict[str, str]
) -> None:
    admin = demo_keys["admin"]
    response = web.get(PAGE, params=CUSTOM)
    assert response.status_code == 200, response.text
    html = response.text
    summary = api_get(web, admin, f"{API}/performance/summary", start=START, end=END)
    assert summary["run_count"] > 0
    cards = fields(section(html, "summary"))
    assert int(cards["run_count"]) == summary["run_count"]
    assert number(cards["success_rate"]) == pytest.approx(summary["success_rate"], rel=1e-12)
    assert number(cards["p50_ms"]) == pytest.approx(summary["latency_ms"]["p50"], rel=1e-12)
    assert number(cards["p95_ms"]) == pytest.approx(summary["latency_ms"]["p95"], rel=1e-12)
    assert number(cards["cost"]) == pytest.approx(summary["cost"]["total"], rel=1e-12)
    assert int(cards["tokens"]) == summary["tokens"]["total"]
    assert number(cards["cache_hit_rate"]) == pytest.approx(summary["cache"]["hit_rate"])
    # The figures as they read, and their change against the previous period.
    shown = section(html, "summary")
    assert f'<div class="value">{duration(summary["latency_ms"]["p95"])}</div>' in shown
    assert f'<div class="value">{integer(summary["run_count"])}</div>' in shown
    assert f'<div class="value">{percent(summary["success_rate"])}</div>' in shown
    p95_change = summary["previous_period"]["change_pct"]["latency_p95"]
    assert f"{p95_change:+.1f}%" in shown

    nodes = api_get(web, admin, f"{API}/performance/nodes", start=START, end=END)["data"]
    table = section(html, "nodes")
    assert rows(table) == [n["node_id"] for n in nodes]  # one row each, in the API's order
    for node, row in zip(nodes, table.split("<tr data-node=")[1:], strict=True):
        assert number(fields(row)["p95_ms"]) == pytest.approx(node["latency_ms"]["p95"])
        assert number(fields(row)["cost"]) == pytest.approx(node["cost"])
    assert 'class="sortable nodes"' in table
    sortable = re.findall(r"<button type=\"button\" data-sort>([^<]+)</button>", table)
    assert sortable == ["Error rate", "p95", "Critical path", "Cost", "Cache hit rate"]

    bottlenecks = api_get(web, admin, f"{API}/performance/bottlenecks", start=START, end=END)
    assert rows(section(html, "bottlenecks")) == [b["node_id"] for b in bottlenecks["data"]]
    assert '<svg class="trend"' in section(html, "trends")


def test_links_keep_the_window(web: TestClient) -> None:
    html = web.get(PAGE, params={"window": "30d"}).text
    assert f'href="{PAGE}/runs?window=30d"' in html
    assert 'href="/?window=30d">Workflows</a>' in html
    for status in ("active", "dismissed", "resolved", "all"):
        assert f'href="{PAGE}?window=30d&amp;recs={status}#recommendations"' in html


def test_unknown_and_foreign_workflows_are_not_found(
    client: TestClient, demo_keys: dict[str, str]
) -> None:
    sign_in(client, demo_keys["read"])
    unknown = client.get(f"/apps/{APP}/workflows/no-such-workflow")
    assert unknown.status_code == 404
    assert "Not found" in unknown.text and "text/html" in unknown.headers["content-type"]
    sign_in(client, demo_keys["foreign"])  # an admin of another tenant
    foreign = client.get(PAGE)
    assert foreign.status_code == 404
    assert "Not found" in foreign.text and "data-field" not in foreign.text
    token = form_token(client.get("/").text)
    dismissed = client.post(
        f"{PAGE}/recommendations/1/dismiss", data={"csrf": token}, follow_redirects=False
    )
    assert dismissed.status_code == 404


def test_read_viewers_see_no_forms_and_may_not_post(
    web: TestClient, demo_keys: dict[str, str]
) -> None:
    first = generate(web, demo_keys["admin"])[0]
    html = web.get(PAGE).text
    assert f'data-recommendation="{first["id"]}"' in html
    assert "/dismiss" not in html and "/cache/invalidate" not in html
    token = form_token(html)
    for path, data in (
        (f"{PAGE}/recommendations/{first['id']}/dismiss", {"reason": "no"}),
        (f"{PAGE}/cache/invalidate", {"scope": "all"}),
    ):
        response = web.post(path, data={"csrf": token, **data}, follow_redirects=False)
        assert response.status_code == 403
    still = api_get(web, demo_keys["admin"], f"{API}/optimization/recommendations/{first['id']}")
    assert still["status"] == "active"


def test_admins_dismiss_with_a_reason(client: TestClient, demo_keys: dict[str, str]) -> None:
    admin = demo_keys["admin"]
    recommendations = generate(client, admin)
    target = recommendations[0]["id"]
    sign_in(client, admin)
    html = client.get(PAGE, params={"window": "30d"}).text
    assert f'action="{PAGE}/recommendations/{target}/dismiss?window=30d&amp;recs=active"' in html
    assert '<label for="reason-' in html
    response = client.post(
        f"{PAGE}/recommendations/{target}/dismiss?window=30d&recs=active",
        data={"csrf": form_token(html), "reason": "accepted: the tail comes from the provider"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location == f"{PAGE}?window=30d&recs=active&done=dismissed-{target}#recommendations"
    after = client.get(location).text
    assert f"Recommendation {target} dismissed" in section(after, "recommendations")
    assert str(target) not in articles(after)
    assert len(articles(after)) == len(recommendations) - 1
    dismissed = client.get(PAGE, params={"window": "30d", "recs": "dismissed"}).text
    assert articles(dismissed) == [str(target)]
    assert "accepted: the tail comes from the provider" in dismissed
    assert "Dismissed by web admin" in dismissed
    everything = client.get(PAGE, params={"recs": "all"}).text
    assert sorted(articles(everything)) == sorted(str(r["id"]) for r in recommendations)
    # Recorded exactly as the API's dismiss records it: the key's name, the reason, an event.
    detail = api_get(client, admin, f"{API}/optimization/recommendations/{target}")
    assert (detail["status"], detail["dismissed_by"]) == ("dismissed", "web admin")
    assert detail["dismiss_reason"] == "accepted: the tail comes from the provider"
    assert [e["event"] for e in detail["history"]][-1] == "dismissed"


def test_forms_without_the_token_or_from_another_site_are_refused(
    client: TestClient, demo_keys: dict[str, str]
) -> None:
    admin = demo_keys["admin"]
    target = generate(client, admin)[0]["id"]
    sign_in(client, admin)
    token = form_token(client.get(PAGE).text)
    dismiss = f"{PAGE}/recommendations/{target}/dismiss"
    assert client.post(dismiss, data={"reason": "x"}, follow_redirects=False).status_code == 403
    forged = client.post(dismiss, data={"csrf": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    cross_site = client.post(
        dismiss,
        data={"csrf": token},
        headers={"origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert cross_site.status_code == 403
    invalidate = client.post(
        f"{PAGE}/cache/invalidate", data={"scope": "all"}, follow_redirects=False
    )
    assert invalidate.status_code == 403
    detail = api_get(client, admin, f"{API}/optimization/recommendations/{target}")
    assert detail["status"] == "active"


FAQ = {
    "app_id": APP,
    "workflow_id": WF,
    "node_id": "faq_search",
    "node_type": "knowledge-retrieval",
    "config": {"dataset_ids": ["faq"], "top_k": 3},
}


def test_the_cache_panel_and_invalidation(client: TestClient, demo_keys: dict[str, str]) -> None:
    admin = demo_keys["admin"]
    for query in ("refund", "shipping"):
        stored = client.post(
            "/api/v1/cache/store",
            json={**FAQ, "inputs": {"q": query}, "value": [1], "elapsed_ms": 250, "cost": 0.002},
            headers=auth(admin),
        )
        assert stored.status_code == 200 and stored.json()["stored"], stored.text
    hit = client.post(
        "/api/v1/cache/lookup", json={**FAQ, "inputs": {"q": "refund"}}, headers=auth(admin)
    )
    assert hit.json()["hit"] is True
    sign_in(client, admin)
    html = client.get(PAGE).text
    panel = section(html, "cache")
    statistics = api_get(client, admin, f"{API}/cache/statistics", days=7)
    shown = fields(panel)
    assert int(shown["cache_lookups"]) == statistics["lookups"] == 1
    assert number(shown["cache_hit_rate_service"]) == statistics["hit_rate"] == 1.0
    assert number(shown["cache_time_saved_ms"]) == pytest.approx(statistics["time_saved_ms"])
    assert int(shown["cache_entries"]) == statistics["entries"] == 2
    top = api_get(client, admin, f"{API}/cache/top-nodes", days=7)["data"]
    assert rows(panel) == [n["node_id"] for n in top] == ["faq_search"]
    assert 'action="/apps/support-assistant/workflows/support-rag/cache/invalidate' in panel
    token = form_token(html)

    missing = client.post(
        f"{PAGE}/cache/invalidate?window=7d",
        data={"csrf": token, "scope": "node_type", "node_type": " "},
        follow_redirects=False,
    )
    assert missing.headers["location"].endswith("done=choose-node_type#cache")
    refused = section(client.get(missing.headers["location"]).text, "cache")
    assert 'role="alert">Nothing was invalidated: choose the node type' in refused
    unclear = client.post(
        f"{PAGE}/cache/invalidate", data={"csrf": token, "scope": "every"}, follow_redirects=False
    )
    assert unclear.headers["location"].endswith("done=choose-scope#cache")
    other_node = client.post(
        f"{PAGE}/cache/invalidate",
        data={"csrf": token, "scope": "node_id", "node_id": "docs_search"},
        follow_redirects=False,
    )
    assert other_node.headers["location"].endswith("done=invalidated-0#cache")

    response = client.post(
        f"{PAGE}/cache/invalidate?window=7d",
        data={"csrf": token, "scope": "node_type", "node_type": "knowledge-retrieval"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{PAGE}?window=7d&done=invalidated-2#cache"
    done = client.get(response.headers["location"]).text
    assert '<p class="flash ok" role="status">Invalidated 2 cached entries.</p>' in section(
        done, "cache"
    )
    again = client.post(
        "/api/v1/cache/lookup", json={**FAQ, "inputs": {"q": "refund"}}, headers=auth(admin)
    )
    assert again.json()["hit"] is False
    assert api_get(client, admin, f"{API}/cache/statistics")["entries"] == 0


def test_an_empty_window_says_so(web: TestClient) -> None:
    html = web.get(PAGE, params={"window": "custom", "start": "2020-01-01", "end": "2020-01-08"})
    assert html.status_code == 200
    text = html.text
    assert 'data-empty="window"' in text and "No runs of this workflow in this window" in text
    assert fields(section(text, "summary"))["run_count"] == "0"
    assert "Nothing to chart" in text and '<svg class="trend"' not in text
    assert "No node executions in this window" in text
    assert "No runs in this window." in section(text, "bottlenecks")
    assert "No cache lookups in this window" in text


def test_a_workflow_without_graph_or_recommendations_says_what_to_do(
    web: TestClient, demo_keys: dict[str, str]
) -> None:
    demo = web.get(PAGE).text
    assert 'data-note="no-graph"' not in demo  # the demo registers its graphs
    posted = web.post(
        "/api/v1/runs",
        json=batch(run("solo-1", [llm("solo-1-a", end=2.0)], app_id=APP, workflow_id="solo")),
        headers=auth(demo_keys["ingest"]),
    )
    assert posted.status_code == 200, posted.text
    html = web.get(f"/apps/{APP}/workflows/solo", params={"window": "30d"}).text
    note = html[html.index('data-note="no-graph"') :]
    assert "register its graph with <code>flowscope graph import</code>" in note.lower()
    assert 'data-empty="recommendations"' in html
    assert "flowscope advise --app support-assistant --workflow solo --generate" in html
    assert f"POST /api/v1/apps/{APP}/workflows/solo/optimization/recommendations" in html


LAB = {"app_id": "lab", "workflow_id": "stepped"}


def test_regressions_are_marked_and_listed_and_empty_days_are_gaps(
    web: TestClient, demo_keys: dict[str, str]
) -> None:
    """Runs five a day whose latency and cost triple from day 7 on, none on day 2."""
    runs = []
    for day in (d for d in range(14) if d != 2):
        slow = day >= 7
        for k in range(5):
            run_id, start = f"step-{day}-{k}", day * 86400.0 + k * 3 * 3600
            end = start + (3.0 if slow else 1.0) * (1 + (k - 2) / 50)
            nodes = [llm(run_id, 2700 if slow else 900, 40, start=start, end=end)]
            runs.append(run(run_id, nodes, start=start, end=end, **LAB))
    posted = web.post("/api/v1/runs", json=batch(*runs), headers=auth(demo_keys["ingest"]))
    assert posted.status_code == 200, posted.text
    window = {"start": "2026-11-01T00:00:00+00:00", "end": "2026-11-15T00:00:00+00:00"}
    html = web.get("/apps/lab/workflows/stepped", params={"window": "custom", **window}).text
    trends = api_get(
        web,
        demo_keys["read"],
        "/api/v1/apps/lab/workflows/stepped/performance/trends",
        granularity="day",
        **window,
    )
    charted = {"latency_p50_ms", "latency_p95_ms", "cost_per_run"}
    expected = [r for r in trends["regressions"] if r["metric"] in charted]
    assert {r["metric"] for r in expected} >= {"latency_p50_ms", "latency_p95_ms"}
    assert {r["starts_at"] for r in expected} == {"2026-11-08T00:00:00Z"}
    chart = section(html, "trends")
    listed = re.findall(r'<li data-metric="([^"]+)">', chart)
    assert len(listed) == len(expected)
    assert "p95 latency" in listed and "p50 latency" in listed
    assert "rose from" in chart and "→" in chart
    latency_svg = chart[chart.index('id="latency-chart-title"') : chart.index("</svg>")]
    assert latency_svg.count('<g class="marker">') == 1  # p50 and p95 start together
    assert 'aria-labelledby="latency-chart-title latency-chart-desc"' in chart
    assert "14 days from 2026-11-01" in latency_svg and "1 day without runs" in latency_svg
    p50 = latency_svg[latency_svg.index('class="series p50"') :]
    p50 = p50[: p50.index("</g>")]
    assert p50.count("<polyline") == 2  # split at the empty day, not drawn down to zero
    assert p50.count("<circle") == 13
    cost = chart[chart.index('class="series cost"') :]
    assert cost[: cost.index("</g>")].count("<polyline") == 2  # no cost on a day without runs


def test_trend_chart_draws_gaps_units_and_text_alternatives() -> None:
    starts = [datetime(2026, 11, 1, h, tzinfo=UTC) for h in range(6)]
    svg = trend_chart(
        starts,
        [Line("p95", [1200.0, None, 900.0, 1500.0, None, 2000.0], "p95")],
        chart_id="t",
        title="p95 per hour",
        axis=Axis(unit="ms", hourly=True),
        markers=[Marker(3, "1", "p95 latency rose")],
    )
    assert svg.startswith('<svg class="trend"') and 'role="img"' in svg
    assert '<title id="t-title">p95 per hour</title>' in svg
    desc = svg[svg.index("<desc") : svg.index("</desc>")]
    assert "6 hours from 2026-11-01 00:00 UTC" in desc and "2 hours without runs" in desc
    assert "Marker 1: p95 latency rose" in desc
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 4  # lone points: no line
    assert ">2.0 s<" in svg and ">0.0 s<" in svg and "Hour (UTC)" in svg
    assert ">Nov 01<" in svg and ">02:00<" in svg
    money = trend_chart(
        starts[:2],
        [Line("cost", [0.2, 0.25], "cost")],
        chart_id="m",
        title="cost",
        axis=Axis(unit="USD", hourly=False),
    )
    assert ">$0.30<" in money and "Day (UTC)" in money
    empty = trend_chart(
        starts,
        [Line("p50", [None] * 6, "p50")],
        chart_id="e",
        title="none",
        axis=Axis(unit="ms", hourly=True),
    )
    assert "<polyline" not in empty and "p50: no values." in empty
