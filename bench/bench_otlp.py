"""OTLP ingestion throughput: spans per second through POST /v1/traces, beside the native
batch API (POST /api/v1/runs) on the same workload.

The demo workload's runs are turned into traces (the run is a root span, each node execution
a child span with OpenTelemetry GenAI attributes) and pre-encoded as protobuf requests of
--spans-per-request spans (the SDK's BatchSpanProcessor sends at most 512), so encoding is
not timed. A 200 response means the spans are stored and their runs written. The same runs
then go through the native API as JSON. Both against real `flowscope serve` processes on a
fresh database. For scale: Arize Phoenix, measured on this machine kind, persisted about 70
spans per second end to end.

    python bench/bench_otlp.py                          # SQLite and PostgreSQL
    python bench/bench_otlp.py --database sqlite --runs 5000
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from _servers import fresh_database, new_key, running_server
from flowscope.demo.generator import generate_batches

PHOENIX_SPANS_PER_S = 70


def _ns(value: Any) -> int:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return int(moment.timestamp() * 1_000_000) * 1000


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def run_spans(run: dict[str, Any], trace_number: int) -> list[Span]:
    trace_id = trace_number.to_bytes(16, "big")
    root_id = (trace_number * 1000).to_bytes(8, "big")
    span_ids = {
        node["id"]: (trace_number * 1000 + i).to_bytes(8, "big")
        for i, node in enumerate(run["node_executions"], start=1)
    }
    root = Span(
        trace_id=trace_id,
        span_id=root_id,
        name=run["workflow_id"],
        start_time_unix_nano=_ns(run["started_at"]),
        end_time_unix_nano=_ns(run.get("finished_at") or run["started_at"]),
        attributes=[
            _kv("flowscope.app_id", run["app_id"]),
            _kv("flowscope.workflow_id", run["workflow_id"]),
        ],
        status=Status(code=2 if run["status"] == "failed" else 0),
    )
    spans = [root]
    for node in run["node_executions"]:
        attributes = [
            _kv("flowscope.node_id", node["node_id"]),
            _kv("flowscope.node_type", node["node_type"]),
        ]
        if node.get("model_name"):
            attributes += [
                _kv("gen_ai.operation.name", "chat"),
                _kv("gen_ai.request.model", node["model_name"]),
                _kv("gen_ai.provider.name", node.get("model_provider") or "openai"),
                _kv("gen_ai.usage.input_tokens", node.get("prompt_tokens") or 0),
                _kv("gen_ai.usage.output_tokens", node.get("completion_tokens") or 0),
            ]
        parent = span_ids.get(node.get("parent_id") or "", root_id)
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=span_ids[node["id"]],
                parent_span_id=parent,
                name=node.get("title") or node["node_id"],
                start_time_unix_nano=_ns(node["started_at"]),
                end_time_unix_nano=_ns(node.get("finished_at") or node["started_at"]),
                attributes=attributes,
                status=Status(code=2 if node["status"] == "failed" else 0),
            )
        )
    return spans


def otlp_bodies(runs: list[dict[str, Any]], spans_per_request: int) -> tuple[list[bytes], int]:
    """Protobuf requests; a trace is never split (as the SDK exports whole traces mostly)."""
    bodies, total, pending = [], 0, []

    def flush() -> None:
        request = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource={"attributes": [_kv("service.name", "bench")]},
                    scope_spans=[ScopeSpans(spans=pending)],
                )
            ]
        )
        bodies.append(request.SerializeToString())

    for number, run in enumerate(runs, start=1):
        spans = run_spans(run, number)
        if pending and len(pending) + len(spans) > spans_per_request:
            flush()
            pending = []
        pending.extend(spans)
        total += len(spans)
    if pending:
        flush()
    return bodies, total


def native_bodies(runs: list[dict[str, Any]], batch_runs: int) -> list[bytes]:
    return [
        orjson.dumps({"runs": runs[i : i + batch_runs]}) for i in range(0, len(runs), batch_runs)
    ]


def post_all(
    base: str, path: str, headers: dict[str, str], bodies: list[bytes], clients: int
) -> float:
    limits = httpx.Limits(max_keepalive_connections=0)

    def send(chunk: list[bytes]) -> None:
        with httpx.Client(base_url=base, timeout=120, limits=limits) as client:
            for body in chunk:
                response = client.post(path, content=body, headers=headers)
                response.raise_for_status()
                if path == "/v1/traces" and response.content:
                    raise RuntimeError(f"spans were rejected: {response.content!r}")

    chunks = [bodies[i::clients] for i in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, chunks))
    return time.perf_counter() - started


def all_runs(count: int, seed: int) -> Iterator[dict[str, Any]]:
    for batch in generate_batches(runs=count, batch_size=500, seed=seed):
        yield from batch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=10_000, help="traces to send (~16 spans each)")
    parser.add_argument("--spans-per-request", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    runs = list(all_runs(args.runs, args.seed))
    traces, spans = otlp_bodies(runs, args.spans_per_request)
    native = native_bodies(runs, max(1, len(runs) * args.spans_per_request // spans))
    nodes = spans - len(runs)
    print(
        f"# {platform.python_implementation()} {platform.python_version()}, {len(runs)} traces, "
        f"{spans} spans ({nodes} node executions), {len(traces)} OTLP requests of <= "
        f"{args.spans_per_request} spans ({sum(map(len, traces)) / len(traces) / 1e3:.0f} kB each)"
    )
    print(f"# command: python bench/bench_otlp.py {' '.join(sys.argv[1:])}")
    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    for kind in kinds:
        with fresh_database(kind) as url:
            key = new_key(url)
            with running_server(url, workers=args.workers) as base:
                headers = {
                    "Authorization": f"Bearer {key}",
                    "Content-Type": "application/x-protobuf",
                }
                elapsed = post_all(base, "/v1/traces", headers, traces, args.clients)
            print(
                f"{kind:8s} OTLP /v1/traces   workers={args.workers} clients={args.clients}: "
                f"{spans / elapsed:>8,.0f} spans/s ({len(runs) / elapsed:,.0f} runs/s; "
                f"{spans / elapsed / PHOENIX_SPANS_PER_S:,.0f}x Phoenix's ~{PHOENIX_SPANS_PER_S})"
            )
        with fresh_database(kind) as url:
            key = new_key(url)
            with running_server(url, workers=args.workers) as base:
                headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
                elapsed = post_all(base, "/api/v1/runs", headers, native, args.clients)
            print(
                f"{kind:8s} native /api/v1/runs workers={args.workers} clients={args.clients}: "
                f"{spans / elapsed:>8,.0f} spans/s equivalent ({nodes / elapsed:,.0f} node "
                f"executions/s, {len(runs) / elapsed:,.0f} runs/s)"
            )


if __name__ == "__main__":
    main()
