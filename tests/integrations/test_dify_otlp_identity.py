"""One Dify run, two ways in: `flowscope import dify` from Dify's database and Dify's own
OTLP export of the same run. Whichever arrives first, the result is one run with the same
figures, run by run, node by node, and in the rollups (SQLite and PostgreSQL)."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from flowscope.catalog import read_workflow_pk
from flowscope.integrations.otlp_decode import decode
from flowscope.integrations.otlp_ingest import ingest_spans
from flowscope.performance.run_path import read_critical_path
from flowscope.performance.summary import read_period
from flowscope.performance.window import Window
from flowscope.rollups.read import Filters
from flowscope.runs.read import read_run
from flowscope.store import migrate
from flowscope.store.engine import make_engine, read_transaction
from flowscope.timeutil import to_us
from tests.conftest import new_postgres_database
from tests.integrations.dify_fixture import DIFY_1_9, RUNS, T0, Run, dify_database, populate
from tests.integrations.dify_traces import build
from tests.integrations.test_dify_import import PRICES, run_import, tenant_id_of

# Dify traces finished runs only; the truncated run's story node has no readable usage in
# Dify's trace (Dify itself writes 0 there), so its node figure comes from the import alone.
# Runs with rows only Dify 1.9+ writes (retries kept in process data, offloaded values) are
# left out: the traces built here (dify_traces) model no retry history and no offload marker.
FINISHED = [run for run in RUNS if run.status != "running" and run.key not in DIFY_1_9]
TRACED = [run for run in FINISHED if run.key != "truncated"]
PATHS = ("unified-otel", "export")
# What a trace alone cannot carry as the database has it: an LLM node's input hash (Dify's
# trace holds its rendered prompt, not its inputs), and the predecessor of an iteration or
# loop item or of a node whose predecessor ran more than once (the unified path hangs items
# under a wrapper, and follows only predecessors that ran once). Received both ways, the run
# keeps the database's.


@pytest.fixture
def dify_url() -> Iterator[str]:
    with dify_database() as url:
        yield url


def send_traces(engine: Engine, path: str, runs: list[Run]) -> None:
    tenant_id = tenant_id_of(engine)
    for run in runs:
        for body in build(path, run).bodies():
            decoded = decode(body, json=False)
            assert decoded.rejected == 0, decoded.errors
            result = ingest_spans(engine, tenant_id, decoded.spans, prices=PRICES)
            assert result.rejected_spans == 0, result.errors


def snapshot(engine: Engine, runs: list[Run], *, trace_only: bool = False) -> dict[str, Any]:
    """Every stored figure of the runs, their critical paths and their workflows' rollups."""
    tenant_id = tenant_id_of(engine)
    out: dict[str, Any] = {}
    day = datetime(T0.year, T0.month, T0.day, tzinfo=UTC)
    window = Window(to_us(day), to_us(day + timedelta(days=1)))
    with read_transaction(engine) as conn:
        for run in runs:
            found = read_run(conn, tenant_id, str(run.id))
            assert found is not None, run.key
            figures = found.model_dump(exclude={"node_executions"})
            nodes = {}
            unknown = _unknown_predecessors(run) if trace_only else set()
            for node in found.node_executions:
                row = node.model_dump()
                if trace_only and node.node_type == "llm":
                    row.pop("input_hash")
                if node.id in unknown:
                    row.pop("predecessor_node_id")
                nodes[node.id] = row
            path = read_critical_path(conn, tenant_id, str(run.id))
            assert path is not None
            out[run.key] = (figures, nodes, path.model_dump())
        for run in runs:
            app_id, workflow_id = (str(part) for part in run.app_workflow)
            pk = read_workflow_pk(conn, tenant_id, app_id, workflow_id)
            assert pk is not None
            out[f"rollup {workflow_id}"] = read_period(conn, pk, window, Filters()).model_dump()
    return out


def _unknown_predecessors(run: Run) -> set[str]:
    """Node executions whose predecessor the unified trace cannot name (from the fixture's
    rows: each node's predecessor is the one before it)."""
    ran = Counter(n.node_id for n in run.nodes)
    return {
        str(run.node_uuid(node))
        for before, node in zip([None, *run.nodes], run.nodes, strict=False)
        if node.container is not None or (before is not None and ran[before.node_id] > 1)
    }


def assert_same(left: Any, right: Any, where: str = "") -> None:
    """Equal, floats to 1e-9 (elapsed times come as seconds from one side, as nanosecond
    timestamps from the other)."""
    if isinstance(left, dict) and isinstance(right, dict):
        assert set(left) == set(right), (where, set(left) ^ set(right))
        for key in left:
            assert_same(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
        assert len(left) == len(right), where
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(left, float) or isinstance(right, float):
        assert left == pytest.approx(right, rel=1e-9, abs=1e-9), where
    else:
        assert left == right, where


@pytest.mark.parametrize("path", PATHS)
def test_traces_alone_give_the_imported_runs(engine: Engine, path: str) -> None:
    with new_postgres_database() as traced_runs_only:
        populate(traced_runs_only, TRACED)
        run_import(engine, traced_runs_only)
    imported = snapshot(engine, TRACED, trace_only=True)
    # The same runs, traced, into an empty flowscope database of the same kind.
    with _fresh(engine) as traced_engine:
        send_traces(traced_engine, path, TRACED)
        traced = snapshot(traced_engine, TRACED, trace_only=True)
    assert_same(traced, imported)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("first", ["import", "traces"])
def test_a_run_received_both_ways_is_one_run(
    engine: Engine, dify_url: str, path: str, first: str
) -> None:
    with _fresh(engine) as reference:
        run_import(reference, dify_url)
        expected = snapshot(reference, FINISHED)
    if first == "import":
        run_import(engine, dify_url)
        send_traces(engine, path, FINISHED)
    else:
        send_traces(engine, path, FINISHED)
        run_import(engine, dify_url)
    assert_same(snapshot(engine, FINISHED), expected)
    with read_transaction(engine) as conn:
        count = conn.exec_driver_sql("SELECT COUNT(*) FROM workflow_runs").scalar_one()
    assert count == len(RUNS)  # the running run came by import only; nothing twice


@contextmanager
def _fresh(engine: Engine) -> Iterator[Engine]:
    """An empty, migrated flowscope database of the same kind as `engine`'s."""
    with ExitStack() as stack:
        if engine.dialect.name == "sqlite":
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            url = f"sqlite:///{folder / 'other.db'}"
        else:
            url = stack.enter_context(new_postgres_database())
        other = make_engine(url)
        stack.callback(other.dispose)
        migrate.upgrade(other)
        yield other
