"""The advisor over HTTP: graphs in, recommendations generated, listed, dismissed, resolved and
reopened, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import KeyFactory, auth
from tests.factories import T0, batch, llm, node, run

APP, WORKFLOW = "docs-bot", "summarize"
BASE = f"/api/v1/apps/{APP}/workflows/{WORKFLOW}"
RECS = f"{BASE}/optimization/recommendations"
END = (T0 + timedelta(days=3)).isoformat()


def graph(keywords_reads: str) -> dict[str, Any]:
    """start -> summarize -> keywords -> end, where keywords reads `keywords_reads`."""
    prompt = lambda text: {"prompt_template": [{"role": "user", "text": text}]}  # noqa: E731
    return {
        "nodes": [
            {"id": "start", "type": "start", "title": "Start", "config": {}},
            {"id": "summarize", "type": "llm", "title": "Summarize",
             "config": prompt("{{#start.doc#}}")},
            {"id": "keywords", "type": "llm", "title": "Keywords",
             "config": prompt(f"{{{{#{keywords_reads}.text#}}}}")},
            {"id": "end", "type": "end", "title": "End",
             "config": {"outputs": [{"variable": "s", "value_selector": ["summarize", "text"]},
                                    {"variable": "k", "value_selector": ["keywords", "text"]}]}},
        ],
        "edges": [{"source": "start", "target": "summarize"},
                  {"source": "summarize", "target": "keywords"},
                  {"source": "keywords", "target": "end"}],
    }  # fmt: skip


def runs(count: int, keywords_s: float, first: int = 0) -> dict[str, Any]:
    """Runs a minute apart: summarize 1 s, then keywords `keywords_s`, one after the other."""
    items = []
    for i in range(first, first + count):
        t = i * 60.0
        k_end = t + 1.0 + keywords_s
        items.append(
            run(
                f"run-{i}",
                [
                    node(f"s{i}", "start", start=t, end=t, node_type="start"),
                    llm(
                        f"a{i}",
                        node_id="summarize",
                        start=t,
                        end=t + 1.0,
                        predecessor_node_id="start",
                    ),
                    llm(
                        f"b{i}",
                        node_id="keywords",
                        start=t + 1.0,
                        end=k_end,
                        predecessor_node_id="summarize",
                    ),
                    node(f"e{i}", "end", start=k_end, end=k_end, node_type="end"),
                ],
                app_id=APP,
                workflow_id=WORKFLOW,
                start=t,
                end=k_end,
            )
        )
    return batch(*items)


def post(client: TestClient, key: str, path: str, body: Any = None) -> Any:
    response = client.post(path, json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()


def put_graph(client: TestClient, key: str, body: dict[str, Any]) -> Any:
    response = client.put(f"{BASE}/graph", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()


def generate(client: TestClient, key: str) -> Any:
    return post(client, key, RECS, {"days": 7, "end": END})


def parallel(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in recs if r["rule_id"] == "independent-sequential-nodes"]


def test_graph_registration(client: TestClient, make_key: KeyFactory) -> None:
    key = make_key("admin")
    body = put_graph(client, key, graph("start"))
    assert body["node_count"] == 4 and body["format"] == "json"
    assert {(e["source"], e["target"]) for e in body["independent_edges"]} == {
        ("summarize", "keywords")
    }
    reads = {n["id"]: n["reads"] for n in body["nodes"]}
    assert reads["end"] == ["keywords", "summarize"]
    got = client.get(f"{BASE}/graph", headers=auth(make_key("read")))
    assert got.status_code == 200 and got.json()["nodes"] == body["nodes"]
    # Once the second reads the first, nothing is independent any more.
    assert put_graph(client, key, graph("summarize"))["independent_edges"] == []


def test_graph_errors(client: TestClient, make_key: KeyFactory) -> None:
    key = make_key("admin")
    bad_edge = graph("start")
    bad_edge["edges"].append({"source": "keywords", "target": "nowhere"})
    response = client.put(f"{BASE}/graph", json=bad_edge, headers=auth(key))
    assert response.status_code == 422 and "nowhere" in response.text
    yaml = {"Content-Type": "application/yaml", **auth(key)}
    response = client.put(f"{BASE}/graph", content=b"app: [unclosed", headers=yaml)
    assert response.status_code == 422 and "line" in response.json()["detail"][0]["msg"]
    future = b"kind: app\nversion: 1.0.0\nworkflow:\n  graph:\n    nodes: []\n    edges: []\n"
    response = client.put(f"{BASE}/graph", content=future, headers=yaml)
    assert response.status_code == 422 and "1.0.0" in response.text
    # Nested aliases (a title of 9**6 values from 400 bytes) are refused before they grow.
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 6)]
    bomb += ["kind: app", "version: 0.1.5", "workflow:", "  graph:", "    edges: []"]
    bomb += ["    nodes: [{id: a, data: {type: start, title: *a5}}]"]
    response = client.put(f"{BASE}/graph", content="\n".join(bomb).encode(), headers=yaml)
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"].startswith("YAML aliases expand to more than")
    text = {"Content-Type": "text/plain", **auth(key)}
    assert client.put(f"{BASE}/graph", content=b"x", headers=text).status_code == 415
    read = make_key("read")
    assert client.put(f"{BASE}/graph", json=graph("start"), headers=auth(read)).status_code == 403
    # Nothing was stored by any of these.
    assert client.get(f"{BASE}/graph", headers=auth(read)).status_code == 404


def test_recommendation_lifecycle(client: TestClient, make_key: KeyFactory) -> None:
    admin, reader = make_key("admin", name="alice"), make_key("read")
    assert post(client, admin, "/api/v1/runs", runs(40, keywords_s=0.25))["accepted_runs"] == 40
    put_graph(client, admin, graph("start"))

    first = generate(client, admin)
    assert first["graph"] is True and first["runs_in_window"] == 40
    (rec,) = parallel(first["data"])
    assert rec["node_ids"] == ["summarize", "keywords"]
    assert rec["category"] == "parallelization" and rec["status"] == "active"
    # Side by side, the run loses the shorter of the two: keywords' 250 ms.
    assert abs(rec["estimated_impact"]["latency_ms_per_run"] - 250.0) < 1.0
    assert rec["evidence"]["sample_size"] == 40

    # Regenerating updates in place: same id, nothing new.
    again = generate(client, admin)
    assert again["created"] == 0 and [r["id"] for r in parallel(again["data"])] == [rec["id"]]

    # Readers can look but not dismiss.
    path = f"{RECS}/{rec['id']}/dismiss"
    assert client.post(path, json={}, headers=auth(reader)).status_code == 403
    dismissed = post(client, admin, path, {"reason": "keywords must see the summary"})
    assert dismissed["status"] == "dismissed" and dismissed["dismissed_by"] == "alice"
    assert dismissed["dismiss_reason"] == "keywords must see the summary"
    listed = client.get(RECS, headers=auth(reader)).json()
    assert parallel(listed["data"]) == []
    hidden = client.get(RECS, params={"status": "dismissed"}, headers=auth(reader)).json()
    assert [r["id"] for r in hidden["data"]] == [rec["id"]]

    # Same impact: it stays dismissed.
    assert parallel(generate(client, admin)["data"]) == []
    # Keywords four times slower in most runs: the saving grows from 20% of the median run to
    # half of it, by more than half: it comes back.
    post(client, admin, "/api/v1/runs", runs(80, keywords_s=1.0, first=40))
    reopened = generate(client, admin)
    assert reopened["reopened"] == 1
    (back,) = parallel(reopened["data"])
    assert back["id"] == rec["id"] and back["dismissed_by"] is None

    # The graph now says keywords reads the summary: the condition no longer holds.
    put_graph(client, admin, graph("summarize"))
    resolved = generate(client, admin)
    assert resolved["resolved"] >= 1 and parallel(resolved["data"]) == []
    detail = client.get(f"{RECS}/{rec['id']}", headers=auth(reader)).json()
    assert detail["status"] == "resolved"
    assert [e["event"] for e in detail["history"]] == [
        "created", "dismissed", "reopened", "resolved"
    ]  # fmt: skip
    assert detail["history"][1]["actor"] == "alice"


def test_filters_and_errors(client: TestClient, make_key: KeyFactory) -> None:
    admin = make_key("admin")
    post(client, admin, "/api/v1/runs", runs(40, keywords_s=0.8))
    put_graph(client, admin, graph("start"))
    generate(client, admin)
    only = client.get(RECS, params={"category": "parallelization"}, headers=auth(admin)).json()
    assert only["count"] >= 1 and {r["category"] for r in only["data"]} == {"parallelization"}
    assert client.get(RECS, params={"category": "speed"}, headers=auth(admin)).status_code == 422
    bad_days = client.post(RECS, json={"days": 0}, headers=auth(admin))
    assert bad_days.status_code == 422 and "days" in bad_days.text
    assert client.post(f"{RECS}/999999/dismiss", json={}, headers=auth(admin)).status_code == 404
    # Another tenant sees neither the workflow nor its recommendations.
    other = make_key("admin", tenant="globex")
    assert client.get(RECS, headers=auth(other)).status_code == 404
    assert client.post(RECS, json={}, headers=auth(other)).status_code == 404


def test_graphs_per_version(client: TestClient, make_key: KeyFactory) -> None:
    key = make_key("admin")
    put_graph(client, key, graph("start"))
    response = client.put(
        f"{BASE}/graph", params={"workflow_version": "v2"}, json=graph("summarize"),
        headers=auth(key),
    )  # fmt: skip
    assert response.status_code == 200 and response.json()["workflow_version"] == "v2"

    def independent(**params: str) -> list[Any]:
        body = client.get(f"{BASE}/graph", params=params, headers=auth(key)).json()
        return [(e["source"], e["target"]) for e in body["independent_edges"]]

    assert independent() == [("summarize", "keywords")]  # the graph of every version
    assert independent(workflow_version="v2") == []  # v2's own graph
    assert independent(workflow_version="v1") == [("summarize", "keywords")]  # falls back
