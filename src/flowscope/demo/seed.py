"""Loading the synthetic workload into a database through the normal ingestion path, with
the workflow graph of every demo workflow registered for the advisor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from flowscope.catalog import ensure_workflows
from flowscope.demo.generator import generate_batches
from flowscope.demo.graphs import demo_graph
from flowscope.demo.workflows import demo_workflows
from flowscope.graphs.store import write_graph
from flowscope.ingestion.ingest import ingest_runs
from flowscope.runs.pricing import PriceBook
from flowscope.schemas.runs import RUN_CREATE
from flowscope.store.engine import write_transaction
from flowscope.tenancy.keys import ensure_tenant
from flowscope.timeutil import now_us


@dataclass(frozen=True, slots=True)
class SeedResult:
    runs: int
    node_executions: int


def seed_demo(
    engine: Engine,
    *,
    tenant: str = "demo",
    runs: int = 2000,
    seed: int = 42,
    end: datetime | None = None,
    batch_size: int = 200,
    progress: Callable[[int], None] | None = None,
) -> SeedResult:
    """Register the demo workflows' graphs, then generate `runs` synthetic runs and ingest
    them for `tenant`, batch by batch."""
    prices = PriceBook()
    with write_transaction(engine) as conn:
        tenant_id = ensure_tenant(conn, tenant)
        register_demo_graphs(conn, tenant_id)
    total_runs = total_nodes = 0
    for batch in generate_batches(runs=runs, batch_size=batch_size, seed=seed, end=end):
        models = [RUN_CREATE.validate_python(item) for item in batch]
        with write_transaction(engine) as conn:
            result = ingest_runs(conn, tenant_id, models, prices=prices)
        total_runs += result.accepted_runs
        total_nodes += result.accepted_node_executions
        if progress is not None:
            progress(result.accepted_runs)
    return SeedResult(total_runs, total_nodes)


def register_demo_graphs(conn: Connection, tenant_id: int) -> None:
    """Register (or replace) the graph of every demo workflow, for all its versions."""
    workflows = demo_workflows()
    now = now_us()
    pks = ensure_workflows(conn, tenant_id, [(w.app_id, w.workflow_id) for w in workflows], now)
    for workflow in workflows:
        write_graph(conn, pks[(workflow.app_id, workflow.workflow_id)], demo_graph(workflow), now)
