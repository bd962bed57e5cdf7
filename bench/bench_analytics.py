"""Analytics endpoints at volume: p50 latency over HTTP beside a naive baseline from raw rows.

Loads the demo workload (default 1,000,000 runs, about 14.5 million node executions, over
30 days) through the normal ingestion path, so the rollups are built as in production:
batches are generated, validated and prepared in worker processes and written by this one.
Then starts `flowscope serve` on the database, calls every analytics endpoint `--repeat`
times for the busiest workflow, and computes the same figures from the raw rows
(`bench/_naive.py`) `--naive-repeat` times.

    python bench/bench_analytics.py                          # both databases, 1M runs
    python bench/bench_analytics.py --runs 20000 --databases sqlite
    python bench/bench_analytics.py --reuse                  # keep the loaded databases

The loaded databases stay for `--reuse`: /tmp/flowscope-bench/analytics-<runs>.db and the
PostgreSQL database flowscope_bench_analytics_<runs>.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

import _naive
from _servers import POSTGRES_URL, new_key, running_server
from flowscope.demo.generator import generate_batches
from flowscope.ingestion.ingest import PreparedBatch, prepare_batch, write_batch
from flowscope.runs.pricing import PriceBook
from flowscope.schemas.runs import RUN_CREATE
from flowscope.store import migrate
from flowscope.store.engine import make_engine, read_transaction, write_transaction
from flowscope.tenancy.keys import ensure_tenant
from flowscope.timeutil import HOUR_US, now_us

END = datetime(2026, 11, 28, 18, tzinfo=UTC)  # fixed: a reused database holds the same data
BATCH = 1000


def _produce(worker: int, runs: int, queue: Any) -> None:
    prices = PriceBook()
    for batch in generate_batches(runs=runs, batch_size=BATCH, seed=100 + worker, end=END):
        queue.put(prepare_batch([RUN_CREATE.validate_python(r) for r in batch], prices=prices))
    queue.put(None)


def load(url: str, runs: int, workers: int) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    with write_transaction(engine) as conn:
        tenant_id = ensure_tenant(conn, "demo")
    queue: Any = mp.get_context("fork").Queue(maxsize=4 * workers)
    shares = [runs // workers + (k < runs % workers) for k in range(workers)]
    producers = [
        mp.get_context("fork").Process(target=_produce, args=(k, shares[k], queue))
        for k in range(workers)
    ]
    for p in producers:
        p.start()
    done = loaded_runs = loaded_nodes = 0
    started = last = time.perf_counter()
    while done < workers:
        batch: PreparedBatch | None = queue.get()
        if batch is None:
            done += 1
            continue
        with write_transaction(engine) as conn:
            write_batch(conn, tenant_id, batch)
        loaded_runs += batch.accepted_runs
        loaded_nodes += batch.accepted_node_executions
        if time.perf_counter() - last > 30:
            last = time.perf_counter()
            rate = loaded_nodes / (last - started)
            print(f"  {loaded_runs:,} runs, {loaded_nodes:,} node executions, {rate:,.0f}/s")
    for p in producers:
        p.join()
    elapsed = time.perf_counter() - started
    print(
        f"  loaded {loaded_runs:,} runs, {loaded_nodes:,} node executions in {elapsed:,.0f} s "
        f"({loaded_nodes / elapsed:,.0f} node executions/s, rollups included)"
    )
    engine.dispose()


def database_url(kind: str, runs: int) -> tuple[str, bool]:
    """The benchmark database of `kind` for `runs`, and whether it is already loaded."""
    if kind == "sqlite":
        path = Path("/tmp/flowscope-bench") / f"analytics-{runs}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}", path.exists()
    name = f"flowscope_bench_analytics_{runs}"
    admin = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}", bool(exists)


def drop(kind: str, runs: int) -> None:
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(f"/tmp/flowscope-bench/analytics-{runs}.db{suffix}").unlink(missing_ok=True)
        return
    admin = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "flowscope_bench_analytics_{runs}" WITH (FORCE)')


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def busiest(url: str) -> tuple[str, str, int, list[int], str]:
    """(app, workflow, workflow pk, all workflow pks, a finished run id) with the most runs."""
    engine = make_engine(url)
    with read_transaction(engine) as conn:
        app, workflow, pk = conn.exec_driver_sql(
            "SELECT a.app_id, w.workflow_id, w.id FROM workflows w JOIN apps a ON a.id = w.app_pk "
            "JOIN workflow_runs r ON r.workflow_pk = w.id GROUP BY a.app_id, w.workflow_id, w.id "
            "ORDER BY COUNT(*) DESC LIMIT 1"
        ).one()
        pks = [row[0] for row in conn.exec_driver_sql("SELECT id FROM workflows")]
        run_id = conn.exec_driver_sql(
            f"SELECT run_id FROM workflow_runs WHERE workflow_pk = {pk} AND status = 'succeeded' "
            "ORDER BY started_at_us DESC LIMIT 1"
        ).scalar_one()
    engine.dispose()
    return app, workflow, pk, pks, run_id


def bench(kind: str, args: argparse.Namespace) -> None:
    url, loaded = database_url(kind, args.runs)
    if loaded and not args.reuse:
        drop(kind, args.runs)
        url, loaded = database_url(kind, args.runs)
    print(f"\n## {kind}: {url}")
    if not loaded:
        load(url, args.runs, args.workers)
    else:
        print("  reusing the loaded database")
    app, workflow, pk, pks, run_id = busiest(url)
    key = new_key(url, role="read", tenant="demo")
    base = f"/api/v1/apps/{app}/workflows/{workflow}"
    endpoints = {
        "workflows (7 d)": (f"/api/v1/apps/{app}/workflows?days=7", "workflows"),
        "summary (7 d)": (f"{base}/performance/summary?days=7", "summary"),
        "nodes (7 d)": (f"{base}/performance/nodes?days=7", "nodes"),
        "bottlenecks (7 d)": (f"{base}/performance/bottlenecks?days=7", "bottlenecks"),
        "trends (30 d by day)": (f"{base}/performance/trends?days=30&granularity=day", "day"),
        "trends (30 d by hour)": (f"{base}/performance/trends?days=30&granularity=hour", "hour"),
        "critical-path (1 run)": (f"/api/v1/runs/{run_id}/critical-path", None),
    }
    end = -(-now_us() // HOUR_US) * HOUR_US
    week, month = (end - 7 * 24 * HOUR_US, end), (end - 30 * 24 * HOUR_US, end)
    engine = make_engine(url)

    def naive(kind_of: str) -> Any:
        with read_transaction(engine) as conn:
            if kind_of == "workflows":
                return _naive.workflows(conn, pks, *week)
            if kind_of == "summary":
                return _naive.summary(conn, pk, *week)
            if kind_of in ("nodes", "bottlenecks"):
                return _naive.nodes(conn, pk, *week)
            step = HOUR_US if kind_of == "hour" else 24 * HOUR_US
            return _naive.trends(conn, pk, *month, step)

    print(f"  workflow {app}/{workflow}; {args.repeat} calls per endpoint over HTTP")
    rows = []
    with running_server(url) as server, httpx.Client(base_url=server, timeout=600) as client:
        headers = {"Authorization": f"Bearer {key}"}
        for name, (path, naive_kind) in endpoints.items():
            client.get(path, headers=headers).raise_for_status()  # warm up the connection

            def call(path: str = path) -> None:
                client.get(path, headers=headers).raise_for_status()

            p50, p95 = timed(call, args.repeat)
            naive_p50 = None
            if naive_kind is not None and args.naive_repeat:
                naive_p50, _ = timed(lambda k=naive_kind: naive(k), args.naive_repeat)
            rows.append((name, p50, p95, naive_p50))
            speedup = f"{naive_p50 / p50:,.0f}x" if naive_p50 else "-"
            naive_text = f"{naive_p50:,.0f}" if naive_p50 else "-"
            print(
                f"  {name:24s} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms  "
                f"naive p50 {naive_text:>9s} ms  {speedup:>7s}",
                flush=True,
            )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument(
        "--databases", nargs="+", choices=("sqlite", "postgres"), default=["sqlite", "postgres"]
    )
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--naive-repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="processes preparing batches")
    parser.add_argument("--reuse", action="store_true", help="use already loaded databases")
    args = parser.parse_args()
    print(
        f"# {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, {platform.machine()}"
    )
    print(f"# command: python bench/bench_analytics.py {' '.join(sys.argv[1:])}")
    for kind in args.databases:
        bench(kind, args)


if __name__ == "__main__":
    main()
