"""GET /metrics: the rollups in the Prometheus text format, per tenant or public."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from flowscope.config import Settings
from flowscope.server import create_app
from tests.conftest import KeyFactory, auth
from tests.factories import batch, llm, node, run

WF = {"tenant": "acme", "app_id": "support-bot", "workflow_id": "triage"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def send(client: TestClient, key: str) -> None:
    body = batch(
        run("m-1", [node("s1", "start", node_type="start", end=0.1),
                    llm("l1", node_id="llm_1", prompt=900, completion=40, start=0.1, end=3.0)],
            end=3.0),
        run("m-2", [node("s2", "start", node_type="start", end=0.1),
                    llm("l2", node_id="llm_1", status="failed", start=0.1, end=0.5,
                        prompt=100, completion=0)],
            status="failed", end=0.5),
    )  # fmt: skip
    assert client.post("/api/v1/runs", json=body, headers=auth(key)).status_code == 200


def test_metrics_for_the_key_tenant(client: TestClient, make_key: KeyFactory) -> None:
    send(client, make_key("ingest"))
    response = client.get("/metrics", headers=auth(make_key("read")))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert value(found, "flowscope_workflow_runs_total", **WF) == 2
    assert value(found, "flowscope_workflow_runs_failed_total", **WF) == 1
    assert value(found, "flowscope_workflow_tokens_total", kind="prompt", **WF) == 1000
    node_labels = {**WF, "node_id": "llm_1", "node_type": "llm"}
    assert value(found, "flowscope_node_executions_total", **node_labels) == 2
    assert value(found, "flowscope_node_failures_total", **node_labels) == 1
    assert value(found, "flowscope_node_cost_usd_total", **node_labels) > 0
    # Runs of 3.0 s and 0.5 s: one under each bound from 0.5 s, both under 5 s.
    assert value(found, "flowscope_workflow_run_duration_seconds_bucket", le="0.25", **WF) == 0
    assert value(found, "flowscope_workflow_run_duration_seconds_bucket", le="0.5", **WF) == 1
    assert value(found, "flowscope_workflow_run_duration_seconds_bucket", le="2.5", **WF) == 1
    assert value(found, "flowscope_workflow_run_duration_seconds_bucket", le="5.0", **WF) == 2
    assert value(found, "flowscope_workflow_run_duration_seconds_count", **WF) == 2
    assert value(found, "flowscope_workflow_run_duration_seconds_sum", **WF) == pytest.approx(3.5)


def test_metrics_need_a_key_and_stay_in_the_tenant(
    client: TestClient, make_key: KeyFactory
) -> None:
    send(client, make_key("ingest"))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=auth(make_key("ingest"))).status_code == 403
    other = client.get("/metrics", headers=auth(make_key("read", tenant="globex")))
    assert other.status_code == 200 and "support-bot" not in other.text


@pytest.fixture
def public_client(db_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=db_url, auto_migrate=False, metrics_public=True))
    with TestClient(app) as test_client:
        yield test_client


def test_public_metrics_show_every_tenant(public_client: TestClient, make_key: KeyFactory) -> None:
    send(public_client, make_key("ingest"))
    found = samples(public_client.get("/metrics").text)
    assert value(found, "flowscope_workflow_runs_total", **WF) == 2
