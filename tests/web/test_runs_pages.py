"""The runs list and the run page, over HTTP (in-process, SQLite and PostgreSQL), checked
against the REST API; and the runs service's filters and keyset pages."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select

from flowscope import catalog
from flowscope.runs.read import read_runs
from flowscope.store.engine import read_transaction
from flowscope.store.tables import WorkflowRun
from flowscope.tenancy.keys import ensure_tenant
from flowscope.timeutil import to_us
from flowscope.web.svg.waterfall import tick_label, tick_step
from tests.conftest import auth
from tests.factories import T0, batch, node, run
from tests.web.conftest import DEMO_END, sign_in

RAG = "/apps/support-assistant/workflows/support-rag"
LEADS = "/apps/sales-outreach/workflows/lead-enrichment"
RESEARCH = "/apps/research-copilot/workflows/deep-research"
# A custom window holding every demo run (they span the 30 days before DEMO_END).
ALL = {
    "window": "custom",
    "start": (DEMO_END - timedelta(days=31)).date().isoformat(),
    "end": (DEMO_END + timedelta(days=1)).date().isoformat(),
}


class Parsed(HTMLParser):
    """The attributes of the rows and links tests look at."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.runs: list[str] = []
        self.nodes: list[dict[str, str]] = []
        self.next_url: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "tr" and "data-run" in a:
            self.runs.append(a["data-run"])
        elif tag == "tr" and "data-node-execution" in a:
            self.nodes.append(a)
        elif tag == "a" and a.get("rel") == "next":
            self.next_url = a["href"]


def api(web: TestClient, key: str, url: str, **params: Any) -> Any:
    given = {k: v for k, v in params.items() if v is not None}
    response = web.get(url, params=given, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()


def api_runs(web: TestClient, key: str, workflow: str, **params: Any) -> list[dict[str, Any]]:
    """Every run of the workflow through the REST API, newest first."""
    runs: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api(web, key, f"/api/v1{workflow}/runs", limit=100, cursor=cursor, **params)
        runs += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return runs


def list_pages(web: TestClient, url: str, params: dict[str, str]) -> list[list[str]]:
    """The run ids of every page of the runs list, following "Next page" links."""
    response = web.get(url, params=params)
    pages = []
    while True:
        assert response.status_code == 200, response.text
        parsed = Parsed(response.text)
        pages.append(parsed.runs)
        if parsed.next_url is None:
            return pages
        response = web.get(parsed.next_url)


def listed(web: TestClient, url: str, params: dict[str, str]) -> list[str]:
    return [run_id for page in list_pages(web, url, params) for run_id in page]


# The runs list


def test_the_list_pages_through_every_run_once_newest_first(
    web: TestClient, demo_keys: dict[str, str]
) -> None:
    expected = [r["id"] for r in api_runs(web, demo_keys["admin"], RAG)]
    assert len(expected) > 100  # three pages at least
    pages = list_pages(web, f"{RAG}/runs", ALL)
    assert [len(p) for p in pages[:-1]] == [50] * (len(pages) - 1)
    assert 0 < len(pages[-1]) <= 50
    assert [run_id for page in pages for run_id in page] == expected


def test_a_page_shows_the_runs_figures_and_links_to_each_run(
    web: TestClient, demo_keys: dict[str, str]
) -> None:
    newest = api_runs(web, demo_keys["admin"], LEADS, status="failed")[0]
    text = web.get(f"{LEADS}/runs", params=ALL | {"status": "failed"}).text
    row = text[text.index(f'data-run="{newest["id"]}"') :]
    row = row[: row.index("</tr>")]
    assert f'href="/runs/{newest["id"]}?' in row
    assert '<span class="badge failed">failed</span>' in row
    assert f"<td>{newest['workflow_version']}</td>" in row
    assert f"{newest['node_count']}</td>" in row
    assert html.escape(newest["error"][:40]) in row
    assert "<time datetime=" in row


def test_status_and_version_filters_match_the_api(
    web: TestClient, demo_keys: dict[str, str]
) -> None:
    admin = demo_keys["admin"]
    failed = [r["id"] for r in api_runs(web, admin, LEADS, status="failed")]
    assert failed  # lead-enrichment's social_profile fails in ~15% of runs
    assert listed(web, f"{LEADS}/runs", ALL | {"status": "failed"}) == failed

    every = api_runs(web, admin, RAG)
    v2 = [r["id"] for r in every if r["workflow_version"] == "v2"]
    assert 50 < len(v2) < len(every)  # more than a page, and not every run
    pages = list_pages(web, f"{RAG}/runs", ALL | {"version": "v2"})
    assert len(pages) > 1  # the next-page link keeps the filter
    assert [run_id for page in pages for run_id in page] == v2

    v1_failed = [
        r["id"]
        for r in api_runs(web, admin, LEADS, status="failed")
        if r["workflow_version"] == "v1"
    ]
    assert v1_failed and len(v1_failed) < len(failed)
    both = ALL | {"status": "failed", "version": "v1"}
    assert listed(web, f"{LEADS}/runs", both) == v1_failed


def test_the_filters_are_a_get_form_with_the_known_versions(web: TestClient) -> None:
    text = web.get(f"{RAG}/runs", params=ALL | {"version": "v1"}).text
    form = text[
        text.index('<form class="filters"') : text.index(
            "</form>", text.index('<form class="filters"')
        )
    ]
    assert 'method="get"' in form
    assert '<label for="status">' in form and '<select id="status" name="status">' in form
    assert '<label for="version">' in form and '<select id="version" name="version">' in form
    assert re.findall(r'<option value="(v\d)"', form) == ["v2", "v1"]  # newest first
    assert '<option value="v1" selected>' in form
    assert 'name="window" value="custom"' in form and f'value="{ALL["start"]}"' in form
    assert "Clear filters" in form


def test_the_time_window_limits_the_list(web: TestClient, demo_keys: dict[str, str]) -> None:
    start = (DEMO_END - timedelta(days=10)).date()
    end = (DEMO_END - timedelta(days=3)).date()
    low = datetime(start.year, start.month, start.day, tzinfo=UTC)
    high = datetime(end.year, end.month, end.day, tzinfo=UTC)
    expected = [
        r["id"]
        for r in api_runs(web, demo_keys["admin"], RAG)
        if low <= datetime.fromisoformat(r["started_at"]) < high
    ]
    assert expected
    window = {"window": "custom", "start": start.isoformat(), "end": end.isoformat()}
    assert listed(web, f"{RAG}/runs", window) == expected


def test_nothing_matching_gives_a_helpful_empty_state(web: TestClient) -> None:
    response = web.get(f"{RAG}/runs", params={"window": "24h", "status": "paused"})
    assert response.status_code == 200
    assert 'id="no-runs"' in response.text
    assert "No runs match these filters" in response.text
    assert "Clear the filters" in response.text
    assert "window=30d&amp;status=paused" in response.text  # a wider window, filters kept
    assert 'rel="next"' not in response.text


def test_unknown_and_foreign_workflows_and_bad_cursors(
    web: TestClient, client: TestClient, demo_keys: dict[str, str]
) -> None:
    missing = web.get("/apps/support-assistant/workflows/nope/runs")
    assert missing.status_code == 404 and "Not found" in missing.text
    bad = web.get(f"{RAG}/runs", params={"cursor": "!!"})
    assert bad.status_code == 400 and "not valid" in bad.text
    foreign = sign_in(client, demo_keys["foreign"]).get(f"{RAG}/runs", params=ALL)
    assert foreign.status_code == 404


def test_the_list_needs_a_session(client: TestClient) -> None:
    response = client.get(f"{RAG}/runs", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


# The run page


def page_rows(web: TestClient, run_id: str) -> tuple[str, list[dict[str, str]]]:
    response = web.get(f"/runs/{run_id}")
    assert response.status_code == 200, response.text
    return response.text, Parsed(response.text).nodes


def test_a_runs_critical_path_and_slack_match_the_api(
    web: TestClient, demo_keys: dict[str, str]
) -> None:
    admin = demo_keys["admin"]
    run_id = api_runs(web, admin, RESEARCH)[0]["id"]
    path = api(web, admin, f"/api/v1/runs/{run_id}/critical-path")
    stored = api(web, admin, f"/api/v1/runs/{run_id}")
    text, rows = page_rows(web, run_id)

    assert sorted(r["data-node-execution"] for r in rows) == sorted(
        n["id"] for n in stored["node_executions"]
    )
    critical = {r["data-node-execution"] for r in rows if r["data-critical"] == "true"}
    assert critical == set(path["critical_path"]) and len(critical) > 3
    assert {r["data-critical"] for r in rows} == {"true", "false"}
    slack = {r["data-node-execution"]: r["data-slack-ms"] for r in rows}
    for step in path["steps"]:
        assert float(slack.pop(step["id"])) == pytest.approx(step["slack_ms"], abs=1e-6)
        for child in step["children"]:  # what ran inside a container has its own slack
            assert float(slack.pop(child["id"])) == pytest.approx(child["slack_ms"], abs=1e-6)
    assert slack == {}

    # The chart: one bar per execution, the critical ones highlighted, a text alternative.
    assert re.search(r'<svg class="waterfall" role="img" aria-labelledby=', text)
    assert '<title id="waterfall-title">' in text and '<desc id="waterfall-desc">' in text
    bars = {
        bar: classes
        for classes, bar in re.findall(r'<g class="bar ([^"]+)" data-bar="([^"]+)"', text)
    }
    assert set(bars) == {n["id"] for n in stored["node_executions"]}
    assert {b for b, classes in bars.items() if "critical" in classes.split()} == critical
    assert text.count("★ ") >= len(critical)  # not colour alone: a star marks each


def test_iteration_children_are_grouped_under_their_container(
    web: TestClient, demo_keys: dict[str, str]
) -> None:
    admin = demo_keys["admin"]
    run_id = api_runs(web, admin, RESEARCH)[0]["id"]
    stored = api(web, admin, f"/api/v1/runs/{run_id}")
    children: dict[str, list[dict[str, Any]]] = {}
    for n in stored["node_executions"]:
        if n["parent_id"]:
            children.setdefault(n["parent_id"], []).append(n)
    assert children, "deep-research runs iterate"
    _, rows = page_rows(web, run_id)
    order = [r["data-node-execution"] for r in rows]
    nested = [r["data-node-execution"] for r in rows if "child" in r["class"].split()]
    for container, items in children.items():
        at = order.index(container)
        ids = [n["id"] for n in sorted(items, key=lambda n: (n["started_at"], n["id"]))]
        assert order[at + 1 : at + 1 + len(ids)] == ids  # right under the container
        assert set(ids) <= set(nested)
        if at + 1 + len(ids) < len(order):  # then the next top-level execution
            assert order[at + 1 + len(ids)] not in nested
    assert len(nested) == sum(len(items) for items in children.values())


def test_children_nest_under_a_container_that_runs_beside_other_nodes(
    web: TestClient, demo_keys: dict[str, str]
) -> None:
    nodes = [
        node("a", start=0.0, end=0.5),
        node("loop", node_type="loop", start=0.5, end=5.0),
        node("side", start=1.0, end=2.0, title="Side branch"),
        node("i0", "step", start=0.6, end=1.0, parent_id="loop", loop_id="loop", loop_index=0),
        node("i1", "step", start=1.1, end=4.9, parent_id="loop", loop_id="loop", loop_index=1),
        node("z", start=5.0, end=5.1),
    ]
    body = batch(run("nested", nodes, app_id="support-assistant", workflow_id="support-rag"))
    posted = web.post("/api/v1/runs", json=body, headers=auth(demo_keys["ingest"]))
    assert posted.status_code == 200, posted.text
    text, rows = page_rows(web, "nested")
    assert [r["data-node-execution"] for r in rows] == ["a", "loop", "i0", "i1", "side", "z"]
    assert [r["class"].split() for r in rows] == [
        ["on-path"],
        ["on-path"],
        ["on-path", "child", "depth-1"],  # the path steps into the loop: its items held it up
        ["on-path", "child", "depth-1"],
        [],
        ["on-path"],
    ]
    assert "[0] step" in text and "[1] step" in text
    path = api(web, demo_keys["admin"], "/api/v1/runs/nested/critical-path")
    assert path["critical_path"] == ["a", "loop", "i0", "i1", "z"]
    loop = next(s for s in path["steps"] if s["id"] == "loop")
    assert [(c["id"], c["on_critical_path"]) for c in loop["children"]] == [
        ("i0", True),
        ("i1", True),
    ]
    assert float(rows[4]["data-slack-ms"]) == pytest.approx(3000.0)  # side may end at 5.0 s


def test_a_failed_nodes_error_is_shown(web: TestClient, demo_keys: dict[str, str]) -> None:
    admin = demo_keys["admin"]
    run_id = api_runs(web, admin, LEADS, status="failed")[0]["id"]
    stored = api(web, admin, f"/api/v1/runs/{run_id}")
    failed = [n for n in stored["node_executions"] if n["status"] == "failed"]
    assert failed and failed[0]["error"]
    text, _ = page_rows(web, run_id)
    row = text[text.index(f'data-node-execution="{failed[0]["id"]}"') :]
    row = row[: row.index("</tr>")]
    assert html.escape(failed[0]["error"]) in row
    assert '<span class="badge failed">failed</span>' in row
    assert '<pre class="error-text">' + html.escape(stored["error"]) in text  # the run's own


def test_foreign_and_unknown_runs_are_not_found(
    web: TestClient, client: TestClient, demo_keys: dict[str, str]
) -> None:
    run_id = api_runs(web, demo_keys["admin"], RAG)[0]["id"]
    unknown = web.get("/runs/no-such-run")
    assert unknown.status_code == 404 and "Not found" in unknown.text
    foreign = sign_in(client, demo_keys["foreign"]).get(f"/runs/{run_id}")
    assert foreign.status_code == 404 and "Not found" in foreign.text
    # Another tenant's run and a run that does not exist look the same: nothing leaks.
    made_up = "00000000-0000-4000-8000-000000000000"
    assert foreign.text.replace(run_id, "?") == client.get(f"/runs/{made_up}").text.replace(
        made_up, "?"
    )


def test_a_run_without_node_executions_says_so(web: TestClient, demo_keys: dict[str, str]) -> None:
    body = batch(run("bare", app_id="support-assistant", workflow_id="support-rag"))
    assert web.post("/api/v1/runs", json=body, headers=auth(demo_keys["ingest"])).status_code == 200
    text, rows = page_rows(web, "bare")
    assert rows == []
    assert 'id="no-nodes"' in text and "No node executions recorded" in text
    assert "<svg" not in text


def test_the_run_page_links_back_with_the_window(
    web: TestClient, demo_keys: dict[str, str]
) -> None:
    run_id = api_runs(web, demo_keys["admin"], RAG)[0]["id"]
    text = web.get(f"/runs/{run_id}", params={"window": "30d"}).text
    assert f'href="{RAG}/runs?window=30d"' in text
    assert f'href="{RAG}?window=30d"' in text


# The service: filters and keyset pages stay on the index


def _workflow_pk(engine: Engine) -> int:
    with read_transaction(engine) as conn:
        tenant_id = ensure_tenant(conn, "demo")
        pk = catalog.read_workflow_pk(conn, tenant_id, "support-assistant", "support-rag")
    assert pk is not None
    return pk


def test_read_runs_filters_by_version_and_start_time_across_pages(demo_engine: Engine) -> None:
    workflow_pk = _workflow_pk(demo_engine)
    with read_transaction(demo_engine) as conn:
        every = conn.execute(
            select(WorkflowRun.run_id, WorkflowRun.started_at_us, WorkflowRun.workflow_version)
            .where(WorkflowRun.workflow_pk == workflow_pk)
            .order_by(WorkflowRun.started_at_us.desc(), WorkflowRun.id.desc())
        ).all()
    low = every[len(every) * 3 // 4].started_at_us  # a quarter of the runs are older
    high = every[len(every) // 5].started_at_us  # a fifth are newer (excluded: end is open)
    expected = [
        r.run_id for r in every if low <= r.started_at_us < high and r.workflow_version == "v2"
    ]
    assert 20 < len(expected) < len(every)
    seen: list[str] = []
    cursor = None
    with read_transaction(demo_engine) as conn:
        while True:
            page = read_runs(
                conn, workflow_pk, workflow_version="v2", start_us=low, end_us=high, limit=7,
                cursor=cursor,
            )  # fmt: skip
            seen += [r.id for r in page.data]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == expected
        assert read_runs(conn, workflow_pk, workflow_version="v9").data == []
        assert read_runs(conn, workflow_pk, start_us=high, end_us=high).data == []


def test_read_runs_walks_the_index_without_sorting(demo_engine: Engine) -> None:
    """Every filter and the cursor keep the newest-first walk on (workflow_pk, started_at_us,
    id): no sort step, so a page costs the same at any depth and any volume."""
    workflow_pk = _workflow_pk(demo_engine)
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if "FROM workflow_runs" in statement:
            statements.append((statement, params))

    with read_transaction(demo_engine) as conn:
        first = read_runs(conn, workflow_pk, limit=5)
        event.listen(demo_engine, "before_cursor_execute", capture)
        try:
            read_runs(
                conn, workflow_pk, status="succeeded", workflow_version="v2",
                start_us=to_us(T0) - 10**14, end_us=to_us(DEMO_END), limit=5,
                cursor=first.next_cursor,
            )  # fmt: skip
        finally:
            event.remove(demo_engine, "before_cursor_execute", capture)
        ((statement, params),) = statements
        if demo_engine.dialect.name == "sqlite":
            plan = " | ".join(
                str(row[-1])
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
            )
            assert "ix_workflow_runs_workflow_pk_started_at_us_id" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
        else:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = " | ".join(
                str(row[0]) for row in conn.exec_driver_sql(f"EXPLAIN {statement}", params)
            )
            assert "Index Scan Backward using ix_workflow_runs_workflow_pk_started_at_us_id" in plan
            assert "Sort" not in plan, plan


# The chart's axis


@pytest.mark.parametrize(
    ("span_ms", "step"),
    [(0.5, 0.1), (7.0, 1.0), (950.0, 200.0), (22_330.0, 5000.0), (88_474.0, 20_000.0)],
)
def test_ticks_are_round_and_at_most_eight(span_ms: float, step: float) -> None:
    assert tick_step(span_ms) == pytest.approx(step)
    assert span_ms / tick_step(span_ms) <= 8


def test_tick_labels_read_in_ms_then_seconds() -> None:
    assert [tick_label(v) for v in (0, 200, 5000, 20_000)] == ["0", "200 ms", "5 s", "20 s"]


def test_the_window_selector_keeps_the_filters(web: TestClient) -> None:
    text = web.get(f"{RAG}/runs", params={"window": "7d", "status": "failed", "version": "v1"}).text
    selector = text[
        text.index('<form class="window"') : text.index(
            "</form>", text.index('<form class="window"')
        )
    ]
    presets = re.findall(r'href="\?([^"]+)" class="preset', selector)
    assert len(presets) == 3
    for query in presets:
        assert "status=failed" in query and "version=v1" in query
    assert '<input type="hidden" name="status" value="failed">' in selector
