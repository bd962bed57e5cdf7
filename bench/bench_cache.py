"""Cache lookup latency: hits and misses on each backend, in-process and over HTTP.

In-process: the backend behind FaultTolerantBackend, as the server uses it (memory, SQLite,
PostgreSQL, Redis). Over HTTP: POST /api/v1/cache/lookup on `flowscope serve` with its default
`sql://` backend on SQLite, one client, kept-alive connection (policy, key and backend included).

    python bench/bench_cache.py
    python bench/bench_cache.py --calls 2000 --backends memory redis
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from _servers import fresh_database, new_key, running_server
from flowscope.cache.backends import open_backend
from flowscope.cache.backends.base import Entry, FaultTolerantBackend
from flowscope.store.engine import make_engine

REDIS_URL = os.environ.get("FLOWSCOPE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
VALUE = orjson.dumps({"chunks": ["Orders ship within two days." * 4] * 4})


def percentiles(call: Callable[[int], Any], calls: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, calls per second) of `call(i)` for i in range(calls)."""
    times = []
    started = time.perf_counter()
    for i in range(calls):
        t = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - t) * 1000)
    elapsed = time.perf_counter() - started
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))], calls / elapsed


def in_process(name: str, url: str, calls: int, engine: Any = None) -> None:
    backend = FaultTolerantBackend(open_backend(url, engine=engine), 0.05)
    try:
        for i in range(calls):
            entry = Entry.new(VALUE, ttl_s=3600, app_id="a", workflow_id="w", node_id="n",
                              node_type="knowledge-retrieval")  # fmt: skip
            backend.set(1, f"{i:064x}", entry)
        hit = percentiles(lambda i: backend.get(1, f"{i:064x}"), calls)
        miss = percentiles(lambda i: backend.get(1, f"{i + calls:064x}"), calls)
        for label, (p50, p99, rate) in (("hit", hit), ("miss", miss)):
            print(f"{name:22s} {label:4s}  p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  {rate:9,.0f}/s")
        assert backend.errors == 0, f"{backend.errors} backend errors"
    finally:
        backend.invalidate(1, app_id="a", workflow_id="w", all=True)
        backend.close()


def over_http(calls: int) -> None:
    with fresh_database("sqlite") as url:
        key = new_key(url, role="ingest")
        with running_server(url) as base, httpx.Client(base_url=base, timeout=30) as client:
            headers = {"Authorization": f"Bearer {key}"}

            def body(i: int) -> dict[str, Any]:
                return {"app_id": "a", "workflow_id": "w", "node_id": "kb",
                        "node_type": "knowledge-retrieval", "config": {"top_k": 4},
                        "inputs": {"query": f"question {i}"}}  # fmt: skip

            for i in range(calls):
                stored = client.post("/api/v1/cache/store", json={**body(i), "value": "x" * 500},
                                     headers=headers)  # fmt: skip
                stored.raise_for_status()

            def lookup(i: int) -> None:
                client.post(
                    "/api/v1/cache/lookup", json=body(i), headers=headers
                ).raise_for_status()

            hit = percentiles(lookup, calls)
            miss = percentiles(lambda i: lookup(i + calls), calls)
            for label, (p50, p99, rate) in (("hit", hit), ("miss", miss)):
                print(f"{'HTTP, sql:// on SQLite':22s} {label:4s}  p50 {p50:7.3f} ms  "
                      f"p99 {p99:7.3f} ms  {rate:9,.0f}/s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument(
        "--backends", nargs="+", default=["memory", "sqlite", "postgres", "redis", "http"]
    )
    args = parser.parse_args()
    print(
        f"# {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores"
    )
    print(f"# command: python bench/bench_cache.py --calls {args.calls}")
    if "memory" in args.backends:
        in_process("memory", "memory://?max_entries=100000", args.calls)
    for kind in ("sqlite", "postgres"):
        if kind in args.backends:
            with fresh_database(kind) as url:
                engine = make_engine(url)
                in_process(f"SQL ({kind})", "sql://", args.calls, engine)
                engine.dispose()
    if "redis" in args.backends:
        in_process("redis", REDIS_URL, args.calls)
    if "http" in args.backends:
        over_http(min(args.calls, 2000))


if __name__ == "__main__":
    main()
