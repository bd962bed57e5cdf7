"""Benchmark of the Python SDK: caller overhead per node execution, and end-to-end throughput.

    .venv/bin/python bench/bench_sdk.py              # also serves fresh SQLite and PostgreSQL
    .venv/bin/python bench/bench_sdk.py --serve --url http://127.0.0.1:8000 --api-key fsk_...

(1) Caller overhead: the time the workflow's own thread spends in the SDK per recorded node
execution (open, usage, close; the run's own cost shared over its nodes), measured on runs of
`--nodes` nodes while the background thread is sending them into a real SQLite database.
(2) Throughput: node executions per second from the first recorded run until `flush()` says
everything is stored, in-process into SQLite and, given --url and --api-key, over HTTP.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _servers import fresh_database, new_key, running_server
from flowscope import Recorder


def record(rec: Recorder, nodes: int) -> None:
    with rec.run(app_id="bench", workflow_id="sdk") as run:
        for i in range(nodes):
            with run.node(f"llm_{i}", node_type="llm") as node:
                node.usage("gpt-4o-mini", "openai", prompt_tokens=900, completion_tokens=40)


def caller_overhead(rec: Recorder, runs: int, nodes: int) -> list[float]:
    """Microseconds of caller time per node execution, one sample per run."""
    for _ in range(min(200, runs)):  # warm up: first-call costs, allocator, caches
        record(rec, nodes)
    samples = []
    clock = time.perf_counter_ns
    for _ in range(runs):
        start = clock()
        record(rec, nodes)
        samples.append((clock() - start) / nodes / 1000)
    return samples


def throughput(rec: Recorder, runs: int, nodes: int) -> tuple[float, float]:
    """(node executions per second end to end, seconds) for `runs` runs, flush included."""
    start = time.perf_counter()
    for _ in range(runs):
        record(rec, nodes)
    if not rec.flush(timeout=600):
        raise SystemExit("flush did not finish within 600 s")
    elapsed = time.perf_counter() - start
    return runs * nodes / elapsed, elapsed


def report(label: str, rec: Recorder, runs: int, nodes: int) -> None:
    before = rec.stats
    rate, elapsed = throughput(rec, runs, nodes)
    after = rec.stats
    sent = after.sent + after.replayed - before.sent - before.replayed
    fates = (
        f"runs sent {sent:,}, spooled {after.spooled - before.spooled}, "
        f"dropped {after.dropped - before.dropped}, rejected {after.rejected - before.rejected}"
    )
    print(f"  {label}: {rate:,.0f} node executions/s")
    print(f"    ({runs * nodes:,} in {elapsed:.2f} s; {fates})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5000, help="runs sampled for the overhead")
    parser.add_argument("--nodes", type=int, default=20, help="node executions per run")
    parser.add_argument("--e2e-runs", type=int, default=5000, help="runs sent for throughput")
    parser.add_argument(
        "--serve",
        nargs="*",
        choices=["sqlite", "postgres"],
        default=["sqlite", "postgres"],
        help="start `flowscope serve` (2 workers) on a fresh database of each kind and measure "
        "HTTP throughput to it (default: both; none with --serve and no value)",
    )
    parser.add_argument("--url", help="a flowscope server, for the HTTP throughput")
    parser.add_argument("--api-key", help="an ingest key for --url")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    argv = ["fsk_..." if arg == args.api_key else arg for arg in sys.argv]  # keep keys out of logs
    print(f"$ {shlex.join([Path(sys.executable).name, *argv])}")
    print(f"python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    # Room for every run: the figure is the pipeline's speed, not the queue bound's.
    limits = {"max_queue": 1_000_000, "max_queue_node_executions": 100_000_000}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        spool = Path(tmp) / "spool"
        with Recorder(database_url=url, tenant="bench", spool_dir=spool, **limits) as rec:
            record(rec, 1)
            rec.flush(timeout=60)  # migrate the fresh database outside the measurements
            samples = caller_overhead(rec, args.runs, args.nodes)
            cuts = statistics.quantiles(samples, n=100)
            median = statistics.median(samples)
            shape = f"{args.runs:,} runs of {args.nodes} nodes"
            print(f"(1) caller overhead per node execution, {shape}, sent to SQLite meanwhile:")
            print(f"  median {median:.2f} us, p90 {cuts[89]:.2f} us, p99 {cuts[98]:.2f} us")
            rec.flush(timeout=600)
            print(f"(2) end-to-end throughput, {args.e2e_runs:,} runs of {args.nodes} nodes:")
            report("in-process SQLite", rec, args.e2e_runs, args.nodes)
        for kind in args.serve:
            with fresh_database(kind) as database_url:
                key = new_key(database_url)
                with (
                    running_server(database_url, workers=2) as base,
                    Recorder(url=base, api_key=key, spool_dir=spool / kind, **limits) as rec,
                ):
                    report(f"HTTP, flowscope serve on {kind}", rec, args.e2e_runs, args.nodes)
        if args.url and args.api_key:
            with Recorder(url=args.url, api_key=args.api_key, spool_dir=spool, **limits) as rec:
                report(f"HTTP {args.url}", rec, args.e2e_runs, args.nodes)
        elif args.url or args.api_key:
            print("  (HTTP skipped: give both --url and --api-key)")


if __name__ == "__main__":
    main()
