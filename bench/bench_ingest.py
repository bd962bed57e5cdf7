"""Ingestion throughput: node executions per second through the HTTP batch API.

Starts real `flowscope serve` processes on a fresh SQLite file and a fresh PostgreSQL database,
pre-serialises batches of the demo workload (so generation is not timed), and posts them from
concurrent client threads. Prints node executions per second, and the same batches ingested
in-process (no HTTP) for reference.

    python bench/bench_ingest.py                      # both databases, defaults below
    python bench/bench_ingest.py --database sqlite --runs 20000 --workers 2 --clients 4
"""

from __future__ import annotations

import argparse
import gzip
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson

from _servers import fresh_database, new_key, running_server
from flowscope.demo.generator import generate_batches
from flowscope.ingestion.ingest import ingest_runs
from flowscope.runs.pricing import PriceBook
from flowscope.schemas.runs import RUN_BATCH_CREATE
from flowscope.store.engine import make_engine, write_transaction
from flowscope.tenancy.keys import ensure_tenant


def make_bodies(runs: int, batch_runs: int, seed: int) -> tuple[list[bytes], int]:
    bodies, nodes = [], 0
    for batch in generate_batches(runs=runs, batch_size=batch_runs, seed=seed):
        nodes += sum(len(r["node_executions"]) for r in batch)
        bodies.append(orjson.dumps({"runs": batch}))
    return bodies, nodes


def post_all(base: str, key: str, bodies: list[bytes], clients: int, compress: bool) -> float:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if compress:
        headers["Content-Encoding"] = "gzip"
        bodies = [gzip.compress(b, 1) for b in bodies]

    # A connection per request: uvicorn's workers share one listening socket, and kept-alive
    # connections would all stay with whichever worker accepted them first.
    limits = httpx.Limits(max_keepalive_connections=0)

    def send(chunk: list[bytes]) -> None:
        with httpx.Client(base_url=base, timeout=120, limits=limits) as client:
            for body in chunk:
                response = client.post("/api/v1/runs", content=body, headers=headers)
                response.raise_for_status()

    chunks = [bodies[i::clients] for i in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, chunks))
    return time.perf_counter() - started


def ingest_in_process(url: str, bodies: list[bytes]) -> float:
    engine = make_engine(url)
    prices = PriceBook()
    with write_transaction(engine) as conn:
        tenant_id = ensure_tenant(conn, "in-process")
    started = time.perf_counter()
    for body in bodies:
        batch = RUN_BATCH_CREATE.validate_json(body)
        with write_transaction(engine) as conn:
            ingest_runs(conn, tenant_id, batch["runs"], prices=prices)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=20_000, help="runs to send (~15 nodes each)")
    parser.add_argument("--batch-runs", type=int, default=200, help="runs per request")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--gzip", action="store_true", help="send gzip-compressed bodies")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    bodies, nodes = make_bodies(args.runs, args.batch_runs, args.seed)
    mb = sum(map(len, bodies)) / 1e6
    print(
        f"# {platform.python_implementation()} {platform.python_version()}, "
        f"{args.runs} runs, {nodes} node executions, {len(bodies)} requests of "
        f"{args.batch_runs} runs ({mb / len(bodies):.2f} MB each)"
    )
    print(f"# command: python bench/bench_ingest.py {' '.join(sys.argv[1:])}")
    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    for kind in kinds:
        with fresh_database(kind) as url:
            key = new_key(url)
            with running_server(url, workers=args.workers) as base:
                elapsed = post_all(base, key, bodies, args.clients, args.gzip)
            print(
                f"{kind:8s} HTTP  workers={args.workers} clients={args.clients}: "
                f"{nodes / elapsed:>9,.0f} node executions/s ({args.runs / elapsed:,.0f} runs/s)"
            )
        with fresh_database(kind) as url:
            elapsed = ingest_in_process(url, bodies)
            print(
                f"{kind:8s} in-process, one thread:     {nodes / elapsed:>9,.0f} node executions/s"
            )


if __name__ == "__main__":
    main()
