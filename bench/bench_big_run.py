"""One run of many node executions: the CPU time ingestion spends on it (issue 15, D5).

Timing alone used to make every execution depend on every one that ended before it, so a
run of 20,000 executions one after another cost 200 million dependencies: 95.8 s of CPU,
holding SQLite's writer. Builds such runs (a chain, and a chain of fan-outs four wide),
validates them like the API does and ingests each into a fresh SQLite database in this
process, printing CPU seconds for preparing (rows, totals, rollup contributions with the
critical path) and for writing.

Usage: .venv/bin/python bench/bench_big_run.py [NODES]   (default 20,000)
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from flowscope.ingestion.ingest import prepare_batch, write_batch
from flowscope.runs.pricing import PriceBook
from flowscope.schemas.runs import RUN_BATCH_CREATE
from flowscope.store import migrate
from flowscope.store.engine import make_engine, write_transaction
from flowscope.tenancy.keys import ensure_tenant

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def big_run(run_id: str, nodes: int, width: int) -> dict[str, Any]:
    """`nodes` executions of 10 ms in steps of `width` side by side, one step after another."""
    executions = []
    for i in range(nodes):
        step = i // width
        start = T0 + timedelta(milliseconds=10 * step)
        executions.append(
            {
                "id": f"e{i}",
                "node_id": f"n{i % 50}",
                "node_type": "code",
                "status": "succeeded",
                "started_at": start.isoformat(),
                "finished_at": (start + timedelta(milliseconds=10)).isoformat(),
            }
        )
    end = T0 + timedelta(milliseconds=10 * (nodes // width + 1))
    return {
        "id": run_id,
        "app_id": "bench",
        "workflow_id": "big",
        "status": "succeeded",
        "started_at": T0.isoformat(),
        "finished_at": end.isoformat(),
        "node_executions": executions,
    }


def measure(nodes: int, width: int) -> tuple[float, float]:
    body = orjson.dumps({"runs": [big_run(f"big-{width}", nodes, width)]})
    runs = RUN_BATCH_CREATE.validate_json(body)["runs"]
    with tempfile.TemporaryDirectory() as directory:
        engine = make_engine(f"sqlite:///{Path(directory) / 'big.db'}")
        migrate.upgrade(engine)
        with write_transaction(engine) as conn:
            tenant_id = ensure_tenant(conn, "bench")
        started = time.process_time()
        prepared = prepare_batch(runs, prices=PriceBook())
        prepare_s = time.process_time() - started
        started = time.process_time()
        with write_transaction(engine) as conn:
            write_batch(conn, tenant_id, prepared)
        write_s = time.process_time() - started
        engine.dispose()
    return prepare_s, write_s


def main(nodes: int) -> None:
    print(f"# one run of {nodes:,} node executions, CPU seconds (time.process_time), SQLite")
    for width, shape in ((1, "a chain"), (4, "a chain of fan-outs four wide")):
        prepare_s, write_s = measure(nodes, width)
        print(
            f"{shape:32s} prepare {prepare_s:6.2f} s  write {write_s:6.2f} s  "
            f"total {prepare_s + write_s:6.2f} s"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
