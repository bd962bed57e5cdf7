"""Advisor generation: seconds per workflow to gather the evidence, run every rule and store
the findings, on the demo workload.

Loads `--runs` demo runs over 30 days (graphs registered) into a fresh database, then
generates each demo workflow's recommendations over the last `--days` `--calls` times and
prints the median time per workflow, split into gathering (rollups + the raw sample) and the
rules with storage, plus what was found.

    python bench/bench_advisor.py
    python bench/bench_advisor.py --runs 50000 --days 7
    python bench/bench_advisor.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from flowscope import catalog
from flowscope.advisor.gather import gather
from flowscope.advisor.generate import generate_recommendations
from flowscope.advisor.thresholds import Thresholds
from flowscope.demo.seed import seed_demo
from flowscope.demo.workflows import demo_workflows
from flowscope.performance.window import make_window
from flowscope.runs.pricing import PriceBook
from flowscope.store import migrate
from flowscope.store.engine import make_engine, read_transaction, write_transaction
from flowscope.tenancy.keys import ensure_tenant
from flowscope.timeutil import now_us

END = datetime(2026, 3, 2, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000, help="demo runs (default 20,000)")
    parser.add_argument("--days", type=int, default=7, help="window in days (default 7)")
    parser.add_argument("--calls", type=int, default=3, help="generations per workflow")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'advisor.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        started = time.perf_counter()
        seeded = seed_demo(engine, runs=args.runs, end=END, batch_size=500)
        print(
            f"python {platform.python_version()}, {engine.dialect.name}: loaded {seeded.runs:,} "
            f"runs ({seeded.node_executions:,} node executions) in "
            f"{time.perf_counter() - started:.0f} s"
        )
        if engine.dialect.name == "postgresql":
            # What autovacuum does soon after a bulk load: without statistics, the planner
            # scans node_executions whole for the sample's run ids.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        window = make_window(args.days, None, END, default_days=args.days)
        thresholds, prices = Thresholds(), PriceBook()
        with write_transaction(engine) as conn:
            tenant_id = ensure_tenant(conn, "demo")
        print(f"window: last {args.days} days, sample of {thresholds.sample_runs:,} runs")
        print(f"{'workflow':<34}{'runs':>8}{'gather':>10}{'total':>10}  found")
        for workflow in demo_workflows():
            with read_transaction(engine) as conn:
                pk = catalog.read_workflow_pk(
                    conn, tenant_id, workflow.app_id, workflow.workflow_id
                )
            assert pk is not None
            gathering, totals = [], []
            for _ in range(args.calls):
                with read_transaction(engine) as conn:
                    t0 = time.perf_counter()
                    evidence = gather(conn, pk, window, thresholds, prices=prices, default_ttls={})
                    gathering.append(time.perf_counter() - t0)
                with write_transaction(engine) as conn:
                    t0 = time.perf_counter()
                    result = generate_recommendations(
                        conn, pk, window, thresholds=thresholds, prices=prices,
                        default_ttls={}, actor="bench", now_us=now_us(),
                    )  # fmt: skip
                    totals.append(time.perf_counter() - t0)
            found = Counter(r.category for r in result.data)
            name = f"{workflow.app_id}/{workflow.workflow_id}"
            print(
                f"{name:<34}{evidence.runs:>8,}{statistics.median(gathering):>9.2f}s"
                f"{statistics.median(totals):>9.2f}s  "
                + ", ".join(f"{n} {c}" for c, n in sorted(found.items()))
            )
        engine.dispose()


if __name__ == "__main__":
    main()
