"""Dashboard page times, server side, on the demo data.

Seeds a fresh SQLite (or PostgreSQL) database with the demo workload (2,000 runs by default,
what `flowscope demo` loads), signs in, and times each page in-process (the ASGI app through
Starlette's TestClient: rendering and database reads, no network), median and max of
--repeat requests after one warm-up. Pages: the home page, every workflow page, every
workflow's runs list, and the slowest-to-render runs (the ones with the most node executions).

    python bench/bench_web.py
    python bench/bench_web.py --database postgres --runs 2000 --window 30d
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import sys
import time
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import text

from _servers import fresh_database
from flowscope.config import Settings
from flowscope.demo.seed import seed_demo
from flowscope.server import create_app
from flowscope.store.engine import make_engine, read_transaction, write_transaction
from flowscope.tenancy.keys import create_key


def timed(client: TestClient, url: str, repeat: int) -> tuple[float, float, int]:
    client.get(url)  # warm-up
    times = []
    status = 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        status = response.status_code
    return statistics.median(times), max(times), status


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--window", default="7d", help="24h, 7d or 30d")
    args = parser.parse_args()
    print(
        f"# {platform.python_implementation()} {platform.python_version()}, {args.runs} demo runs"
    )
    print(f"# command: python bench/bench_web.py {' '.join(sys.argv[1:])}")
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with fresh_database(args.database) as url:
        engine = make_engine(url)
        seed_demo(engine, runs=args.runs, end=end)
        with write_transaction(engine) as conn:
            key = create_key(conn, "demo", "bench", "admin").key
        with read_transaction(engine) as conn:
            biggest = [
                row[0]
                for row in conn.execute(
                    text("SELECT run_id FROM workflow_runs ORDER BY node_count DESC, id LIMIT 3")
                )
            ]
        engine.dispose()
        app = create_app(Settings(database_url=url, auto_migrate=False))
        with TestClient(app) as client:
            client.post("/login", data={"key": key, "next": "/"})
            home = client.get(f"/?window={args.window}").text
            workflows = sorted(set(re.findall(r'href="(/apps/[^"?]+/workflows/[^"?/]+)\?', home)))
            urls = [f"/?window={args.window}"]
            for workflow in workflows:
                urls += [
                    f"{workflow}?window={args.window}",
                    f"{workflow}/runs?window={args.window}",
                ]
            urls += [f"/runs/{run_id}" for run_id in biggest]
            print(f"{'page':75s} {'median':>9s} {'max':>9s}")
            for page in urls:
                median, worst, status = timed(client, page, args.repeat)
                flag = "" if status == 200 else f"  (HTTP {status})"
                print(f"{page:75s} {median:7.1f} ms {worst:7.1f} ms{flag}")


if __name__ == "__main__":
    main()
