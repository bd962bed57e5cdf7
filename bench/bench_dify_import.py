"""Dify import throughput: runs and node executions per second from a Dify-shaped database.

Builds a scratch PostgreSQL database with Dify's table layout (the test fixture's DDL) holding
--copies copies of the fixture's runs (plain LLM runs, an iteration, a loop, an error-strategy
exception, legacy retries, a failed run, truncated JSON...), then times `flowscope import
dify`'s importer catching up into a fresh flowscope database, once per backend. Loading the
Dify rows is not timed.

    python bench/bench_dify_import.py       # 400 copies (3,200 runs), SQLite and PostgreSQL
    python bench/bench_dify_import.py --copies 1000 --database sqlite
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test fixture's Dify layout

from tests.integrations.dify_fixture import DDL, RUNS, UNFINISHED, node_row, run_row

from _servers import POSTGRES_URL, fresh_database
from flowscope.integrations.dify_import import DifyImport
from flowscope.integrations.dify_source import RunFilter, connect_dify
from flowscope.runs.pricing import PriceBook
from flowscope.store.engine import make_engine, write_transaction
from flowscope.tenancy.keys import ensure_tenant
from flowscope.testing import scratch_postgres_database


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def load_dify(url: str, copies: int) -> tuple[int, int]:
    """Insert `copies` copies of the fixture's finished runs; returns (runs, node rows)."""
    finished = [run for run in RUNS if run.status not in UNFINISHED]
    runs: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    sequence = 0
    for copy in range(copies):
        for run in finished:
            sequence += 1
            twin = replace(run, key=f"{run.key}-{copy}", minute=run.minute + copy * 30)
            runs.append(run_row(twin, sequence))
            for index, node in enumerate(twin.nodes, start=1):
                predecessor = twin.nodes[index - 2].node_id if index > 1 else None
                nodes.append(node_row(twin, node, index, predecessor))
    with psycopg.connect(_libpq(url)) as conn:
        conn.execute(DDL)
        for table, rows in (("workflow_runs", runs), ("workflow_node_executions", nodes)):
            columns = list(rows[0])
            names = ", ".join(f'"{c}"' for c in columns)
            with conn.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy_in:
                for row in rows:
                    copy_in.write_row([row[c] for c in columns])
        conn.execute("CREATE INDEX ON workflow_runs (created_at, id)")
        conn.execute("ANALYZE")
    return len(runs), len(nodes)


def import_once(dify_url: str, flowscope_url: str) -> tuple[float, int, int]:
    engine = make_engine(flowscope_url)
    with write_transaction(engine) as conn:
        tenant_id = ensure_tenant(conn, "bench")
    dify = connect_dify(dify_url)
    try:
        importer = DifyImport(dify, engine, tenant_id, runs=RunFilter(), prices=PriceBook())
        started = time.perf_counter()
        importer.catch_up()
        elapsed = time.perf_counter() - started
    finally:
        dify.close()
        engine.dispose()
    return elapsed, importer.totals.imported_runs, importer.totals.node_executions


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--copies", type=int, default=400, help="copies of the fixture's runs")
    args = parser.parse_args()
    with scratch_postgres_database(POSTGRES_URL, "dify_bench") as dify_url:
        runs, nodes = load_dify(dify_url, args.copies)
        print(
            f"# {platform.python_implementation()} {platform.python_version()}, Dify database with "
            f"{runs} runs and {nodes} node executions, default batch size"
        )
        print(f"# command: python bench/bench_dify_import.py {' '.join(sys.argv[1:])}")
        kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
        for kind in kinds:
            with fresh_database(kind) as url:
                elapsed, imported, executions = import_once(dify_url, url)
            print(
                f"{kind:8s} imported {imported} runs, {executions} node executions in "
                f"{elapsed:.2f} s: {imported / elapsed:,.0f} runs/s, "
                f"{executions / elapsed:,.0f} node executions/s"
            )


if __name__ == "__main__":
    main()
