"""The real instrumentations, as users run them, sending to a real `flowscope serve`.

Each emitter script (tests/integrations/emitters) drives the real openai client, LangChain
and LangGraph with their real OpenTelemetry instrumentations against the fake OpenAI server,
and exports over OTLP (protobuf, JSON or gRPC) to flowscope. The truth is what the fake
server served: every call it answered must count once (tokens and cost, the cost priced here
with genai-prices directly), the runs must be the invocations, node ids must tell the steps
apart, and the critical path must name the slow call inside its LangGraph node.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from genai_prices import Usage, calc_price

from flowscope.testing import free_port
from tests.conftest import KeyFactory, auth
from tests.integrations.emitter_runner import run_emitter
from tests.integrations.fake_openai import Call, FakeOpenAI
from tests.servers import Server, start_server

pytestmark = pytest.mark.e2e


@dataclass
class Flowscope:
    server: Server
    grpc_port: int
    key: str

    def get(self, path: str, **params: Any) -> Any:
        answer = httpx.get(f"{self.server.url}{path}", params=params, headers=auth(self.key))
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture
def flowscope(db_url: str, make_key: KeyFactory, tmp_path: Path) -> Iterator[Flowscope]:
    port = free_port()
    running = start_server(
        ["--database-url", db_url, "--log-level", "warning", "--otlp-grpc-port", str(port)],
        log=tmp_path / "server.log",
    )
    yield Flowscope(running, port, make_key("admin"))
    running.stop()


def emit(
    flowscope: Flowscope, fake: FakeOpenAI, script: str, service: str, **env: str
) -> list[Call]:
    """Run one emitter script against flowscope; the calls the fake server answered for it."""
    exporter = env.pop("exporter", "protobuf")
    endpoint = (
        f"http://127.0.0.1:{flowscope.grpc_port}"
        if exporter == "grpc"
        else f"{flowscope.server.url}/v1/traces"
    )
    before = len(fake.calls)
    done = run_emitter(
        script,
        fake=fake,
        endpoint=endpoint,
        headers=f"x-flowscope-api-key={flowscope.key}",
        exporter=exporter,
        env={"OTEL_SERVICE_NAME": service, **env},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [c for c in fake.calls[before:] if c.endpoint.startswith("/v1/")]


def runs_of(flowscope: Flowscope, app: str) -> dict[str, list[dict[str, Any]]]:
    """The app's workflows that have runs, each with its runs read back whole."""
    workflows = flowscope.get(f"/api/v1/apps/{app}/workflows")["data"]
    found = {}
    for workflow in workflows:
        if not workflow["run_count"]:
            continue
        listed = flowscope.get(f"/api/v1/apps/{app}/workflows/{workflow['workflow_id']}/runs")
        found[workflow["workflow_id"]] = [
            flowscope.get(f"/api/v1/runs/{run['id']}") for run in listed["data"]
        ]
    return found


def true_cost(calls: list[Call]) -> float:
    total = Decimal(0)
    for call in calls:
        price = calc_price(
            Usage(input_tokens=call.prompt_tokens, output_tokens=call.completion_tokens),
            model_ref=call.model_responded or "",
            provider_id="openai",
        )
        total += price.total_price
    return float(total)


def assert_counted_once(runs: list[dict[str, Any]], calls: list[Call]) -> None:
    served = [c for c in calls if c.status == 200]
    assert sum(r["prompt_tokens"] or 0 for r in runs) == sum(c.prompt_tokens for c in served)
    assert sum(r["completion_tokens"] or 0 for r in runs) == sum(
        c.completion_tokens for c in served
    )
    assert sum(r["cost"] or 0 for r in runs) == pytest.approx(true_cost(served), rel=1e-9)
    llm_nodes = [
        n for r in runs for n in r["node_executions"] if n["node_type"] in ("llm", "embedding")
    ]
    # One node per call the server saw: none doubled by a second instrumentation, none lost.
    assert len(llm_nodes) == len(calls)


GRAPH_NODES = {"lookup", "plan", "draft_a", "draft_b", "merge"}


@pytest.mark.parametrize(
    ("script", "exporter", "call_name"),
    [
        # OpenInference's LangChain and OpenAI instrumentations together: every OpenAI call is
        # also a trace of its own (sent over gRPC here).
        ("openinference_langgraph", "grpc", "ChatOpenAI"),
        ("openllmetry_langgraph", "protobuf", "ChatOpenAI.chat"),
    ],
)
def test_a_langgraph_graph(
    flowscope: Flowscope, fake_openai: FakeOpenAI, script: str, exporter: str, call_name: str
) -> None:
    service = f"svc-{script}"
    calls = emit(flowscope, fake_openai, script, service, exporter=exporter)
    workflows = runs_of(flowscope, service)
    # Three invocations, three runs of one workflow: no workflow per span name or per call.
    assert list(workflows) == ["LangGraph"]
    runs = workflows["LangGraph"]
    assert sorted(r["status"] for r in runs) == ["failed", "succeeded", "succeeded"]
    assert_counted_once(runs, calls)
    for run in runs:
        ids = {n["node_id"]: n for n in run["node_executions"]}
        # The same step across runs is the same node; different steps different nodes.
        assert set(ids) >= GRAPH_NODES
        for step in GRAPH_NODES - {"lookup"}:
            call = ids[f"{step}/{call_name}"]
            assert call["node_type"] == "llm" and call["parent_id"] == ids[step]["id"]
        assert ids["lookup/lookup_policy"]["node_type"] == "tool"
        assert {ids[s]["node_type"] for s in GRAPH_NODES} == {"chain"}
        model = ids[f"draft_b/{call_name}"]["model_name"]
        assert model is not None and model.startswith("gpt-4o")
    failed = next(r for r in runs if r["status"] == "failed")
    merge_call = next(n for n in failed["node_executions"] if n["node_id"] == f"merge/{call_name}")
    assert merge_call["status"] == "failed" and "500" in (merge_call["error"] or "")
    assert failed["unpriced_node_executions"] == 1  # the failed call: a model, no usage
    # The critical path goes through the slow branch's call, not around it.
    ok = next(r for r in runs if r["status"] == "succeeded")
    path = flowscope.get(f"/api/v1/runs/{ok['id']}/critical-path")
    by_id = {n["id"]: n["node_id"] for n in ok["node_executions"]}
    on_path = [by_id[i] for i in path["critical_path"]]
    assert f"draft_b/{call_name}" in on_path and "draft_a" not in on_path
    bottlenecks = flowscope.get(
        f"/api/v1/apps/{service}/workflows/LangGraph/performance/bottlenecks",
        threshold_percentile=50,
    )["data"]
    assert bottlenecks[0]["node_id"] == f"draft_b/{call_name}"
    nodes = flowscope.get(f"/api/v1/apps/{service}/workflows/LangGraph/performance/nodes")
    shares = [n["critical_path_share"] or 0 for n in nodes["data"]]
    assert sum(shares) <= 1.0 + 1e-9


@pytest.mark.parametrize(
    ("variant", "script", "env"),
    [
        ("openai-v2", "openai_v2", {}),
        ("openai-v2-json", "openai_v2", {"exporter": "json"}),
        # HTTP client spans under every model call: part of the call, not steps of their own.
        ("openai-v2-httpx2", "openai_v2", {"EMITTER_HTTPX2": "1"}),
        ("openllmetry-openai", "openllmetry_openai", {}),
        # A root holding direct calls and a LangChain chain whose call is reported twice.
        ("openinference-chain", "openinference_chain", {}),
    ],
)
def test_direct_calls_under_one_root(
    flowscope: Flowscope, fake_openai: FakeOpenAI, variant: str, script: str, env: dict[str, str]
) -> None:
    service = f"svc-{variant}"
    calls = emit(flowscope, fake_openai, script, service, **env)
    workflows = runs_of(flowscope, service)
    assert list(workflows) == ["handle-request"]  # the root, whatever its kind
    (run,) = workflows["handle-request"]
    assert run["status"] == "partial-succeeded"  # one call failed, the request went on
    assert_counted_once([run], calls)
    nodes = run["node_executions"]
    assert len({n["node_id"] for n in nodes}) == len(nodes)  # every step its own node
    assert not any(n["node_id"].endswith("POST") for n in nodes)
    failed = [n for n in nodes if n["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["node_type"] == "llm"
    embeddings = [n for n in nodes if n["node_type"] == "embedding"]
    assert len(embeddings) == 1 and embeddings[0]["model_name"] == "text-embedding-3-small"
    assert embeddings[0]["cost_source"] == "estimated"
