"""End to end: `flowscope serve` as a process, keys from the CLI, runs over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.factories import batch, llm, node, run
from tests.servers import flowscope, free_port, start_server

pytestmark = pytest.mark.e2e


def create_key(database_url: str, role: str, tenant: str = "acme") -> str:
    done = flowscope(
        "keys",
        "create",
        "--tenant",
        tenant,
        "--role",
        role,
        "--name",
        "e2e",
        "--database-url",
        database_url,
    )
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    assert key.startswith("fsk_")
    return key


def exercise(base: str, ingest_key: str, read_key: str) -> None:
    body = batch(
        run(
            "e2e-1",
            [
                node("s", "start", node_type="start", end=0.1),
                llm("l", node_id="llm_1", start=0.1, end=2.0),
            ],
        ),
        run("e2e-2", [node("s", "start", node_type="start")], status="running", end=None),
    )
    with httpx.Client(base_url=base, timeout=30) as http:
        sent = http.post(
            "/api/v1/runs", json=body, headers={"Authorization": f"Bearer {ingest_key}"}
        )
        assert sent.status_code == 200, sent.text
        assert sent.json() == {"accepted_runs": 2, "accepted_node_executions": 3}
        again = http.post(
            "/api/v1/runs", json=body, headers={"Authorization": f"Bearer {ingest_key}"}
        )
        assert again.status_code == 200

        reader = {"Authorization": f"Bearer {read_key}"}
        stored = http.get("/api/v1/runs/e2e-1", headers=reader).json()
        assert stored["node_count"] == 2
        assert stored["node_executions"][1]["cost_source"] == "estimated"
        listed = http.get("/api/v1/apps/support-bot/workflows/triage/runs", headers=reader).json()
        assert [r["id"] for r in listed["data"]] == ["e2e-2", "e2e-1"]
        assert listed["next_cursor"] is None
        assert http.get("/api/v1/runs/e2e-1").status_code == 401
        assert http.get("/healthz").json()["database"] == "ok"
        assert http.get("/openapi.json").json()["info"]["title"] == "flowscope"
        assert http.get("/docs").status_code == 200


def test_serve_on_embedded_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    server = start_server(["--database-url", url], log=tmp_path / "serve.log")  # migrates on start
    try:
        exercise(server.url, create_key(url, "ingest"), create_key(url, "read"))
        advise(server.url, create_key(url, "admin"))
    finally:
        server.stop()


def advise(base: str, admin_key: str) -> None:
    """A real user's Dify export registered over HTTP, then the advisor run on the e2e runs."""
    fixtures = Path(__file__).parents[1] / "graphs" / "fixtures" / "real"
    dsl = fixtures / "svcvit_translation_workflow.yml"
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=base, timeout=30) as http:
        graph = http.put(
            "/api/v1/apps/support-bot/workflows/triage/graph",
            content=dsl.read_bytes(),
            headers={**headers, "Content-Type": "application/yaml"},
        )
        assert graph.status_code == 200, graph.text
        assert (graph.json()["dsl_version"], graph.json()["node_count"]) == ("0.1.0", 8)
        recs = "/api/v1/apps/support-bot/workflows/triage/optimization/recommendations"
        made = http.post(recs, json={"days": 30, "end": "2026-11-02T00:00:00Z"}, headers=headers)
        assert made.status_code == 200, made.text
        # One finished run is not enough evidence for any rule.
        assert (made.json()["runs_in_window"], made.json()["data"]) == (2, [])


def test_serve_on_postgres_with_two_workers(tmp_path: Path, scratch_postgres_database: str) -> None:
    url = scratch_postgres_database
    refused = flowscope("serve", "--database-url", url, "--port", str(free_port()))
    assert refused.returncode != 0
    assert "flowscope db upgrade" in refused.stderr

    upgraded = flowscope("db", "upgrade", "--database-url", url)
    assert upgraded.returncode == 0, upgraded.stderr
    server = start_server(["--database-url", url, "--workers", "2"], log=tmp_path / "serve.log")
    try:
        exercise(server.url, create_key(url, "ingest"), create_key(url, "admin"))
    finally:
        server.stop()
