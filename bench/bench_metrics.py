"""GET /metrics: milliseconds to build the Prometheus exposition from the rollups.

Loads `--runs` demo runs over 30 days (six workflows, ~90 nodes) into a fresh database, then
times `collect` + `render` for every tenant, `--calls` times, and prints the median.

    python bench/bench_metrics.py
    python bench/bench_metrics.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from flowscope.demo.seed import seed_demo
from flowscope.metrics.prometheus import collect, render
from flowscope.store import migrate
from flowscope.store.engine import make_engine, read_transaction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="demo runs (default 2,000)")
    parser.add_argument("--calls", type=int, default=9, help="scrapes to time (default 9)")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(args.database_url or f"sqlite:///{Path(tmp) / 'metrics.db'}")
        migrate.upgrade(engine)
        seed_demo(engine, runs=args.runs, end=datetime(2026, 3, 2, tzinfo=UTC))
        timings = []
        for _ in range(args.calls):
            with read_transaction(engine) as conn:
                started = time.perf_counter()
                body = render(collect(conn, None))
                timings.append(time.perf_counter() - started)
        print(
            f"{engine.dialect.name}, {args.runs:,} runs over 30 days: {len(body):,} bytes, "
            f"{len(body.splitlines()):,} lines, median {statistics.median(timings) * 1000:.1f} ms"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
