"""Concurrent writers: overlapping reports of the same runs, in any order, count once.

Several server processes (on several machines, with PostgreSQL) may ingest reports of the
same runs at the same moment. Threads with their own connections stand in for them here.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from sqlalchemy import Engine

from flowscope.ingestion.ingest import ingest_runs
from flowscope.runs.pricing import PriceBook
from flowscope.runs.read import read_run
from flowscope.schemas.runs import RUN_CREATE, RunCreate
from flowscope.store.engine import read_transaction, write_transaction
from flowscope.tenancy.keys import ensure_tenant
from tests.factories import llm, node, run

RUNS = 12
NODES = 6
WRITERS = 4


def reports(seed: int, finished_share: float) -> list[list[RunCreate]]:
    """For each writer, batches with a random part of each run's nodes, in random order."""
    rng = random.Random(seed)
    batches: list[list[RunCreate]] = [[] for _ in range(WRITERS)]
    for r in range(RUNS):
        nodes: list[dict[str, Any]] = [
            llm(f"n{i}", start=i, end=i + 1, prompt=100 * (i + 1), completion=10)
            if i % 2 == 0
            else node(f"n{i}", start=i, end=i + 1)
            for i in range(NODES)
        ]
        for writer in range(WRITERS):
            part = rng.sample(nodes, rng.randint(1, NODES))
            finished = rng.random() < finished_share
            payload = run(
                f"run-{r}-{seed}",
                part,
                status="succeeded" if finished else "running",
                end=NODES if finished else None,
            )
            batches[writer].append(RUN_CREATE.validate_python(payload))
        # Every node and the final status reach the server at least once.
        batches[rng.randrange(WRITERS)].append(
            RUN_CREATE.validate_python(run(f"run-{r}-{seed}", nodes, status="succeeded", end=NODES))
        )
    for batch in batches:
        rng.shuffle(batch)
    return batches


def write(
    engine: Engine,
    tenant_id: int,
    batch: list[RunCreate],
    prices: PriceBook,
    start: threading.Barrier,
    errors: list[BaseException],
) -> None:
    start.wait()
    try:
        # Small batches, so the writers interleave on every run.
        for i in range(0, len(batch), 3):
            with write_transaction(engine) as conn:
                ingest_runs(conn, tenant_id, batch[i : i + 3], prices=prices)
    except BaseException as exc:
        errors.append(exc)


@pytest.mark.parametrize("finished_share", [0.5, 1.0])
def test_concurrent_overlapping_reports_count_once(engine: Engine, finished_share: float) -> None:
    # With every report finished, every write updates the run: no report is ignored for its
    # rank, so nothing but the ingestion's own bookkeeping can bring a run's totals up to date.
    prices = PriceBook()
    with write_transaction(engine) as conn:
        tenant_id = ensure_tenant(conn, "acme")
    for seed in range(5):
        errors: list[BaseException] = []
        start = threading.Barrier(WRITERS)
        batches = reports(seed, finished_share)
        threads = [
            threading.Thread(target=write, args=(engine, tenant_id, b, prices, start, errors))
            for b in batches
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

        expected_tokens = sum(100 * (i + 1) + 10 for i in range(0, NODES, 2))
        with read_transaction(engine) as conn:
            for r in range(RUNS):
                stored = read_run(conn, tenant_id, f"run-{r}-{seed}")
                assert stored is not None
                assert stored.status == "succeeded"
                assert stored.node_count == NODES
                assert len(stored.node_executions) == NODES
                assert stored.total_tokens == expected_tokens
                assert {n.status for n in stored.node_executions} == {"succeeded"}
