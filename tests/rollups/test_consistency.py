"""Rollups equal the sum of every stored run's contribution, however runs arrive: re-sent,
out of order, partial, changed, and from concurrent writers."""

from __future__ import annotations

import random
import threading
from typing import Any

import orjson
import pytest
from sqlalchemy import Connection, Engine

from flowscope.ingestion.ingest import ingest_runs
from flowscope.rollups.figures import (
    NODE_HISTS,
    NODE_SUMS,
    RUN_HISTS,
    RUN_SUMS,
    Deltas,
    Figures,
    contribution,
)
from flowscope.rollups.write import read_stored_runs
from flowscope.runs.pricing import PriceBook
from flowscope.schemas.runs import RUN_CREATE
from flowscope.store.engine import read_transaction, write_transaction
from flowscope.tenancy.keys import ensure_tenant
from tests.factories import llm, node, run

PRICES = PriceBook()
KEY = (
    "workflow_pk",
    "span_us",
    "scope",
    "bucket_start_us",
    "workflow_version",
    "triggered_from",
)


def final_report(run_id: str, rng: random.Random, hour: int) -> dict[str, Any]:
    t = hour * 3600.0 + rng.random() * 3000
    a, b = 1 + rng.random() * 4, 0.5 + rng.random() * 6
    return run(
        run_id,
        [
            node(f"{run_id}-s", "start", start=t, end=t + 0.2, node_type="start"),
            llm(f"{run_id}-a", node_id="a", start=t + 0.2, end=t + 0.2 + a, title="Answer"),
            node(f"{run_id}-b", "b", start=t + 0.2, end=t + 0.2 + b, node_type="tool",
                 cache_hit=rng.random() < 0.3, cache_lookup=True,
                 retry_count=rng.choice([0, 0, 1])),
            node(f"{run_id}-e", "end", start=t + 0.3 + max(a, b), end=t + 0.4 + max(a, b)),
        ],
        status=rng.choice(["succeeded", "succeeded", "failed"]),
        start=t,
        end=t + 0.4 + max(a, b),
        workflow_version=rng.choice(["v1", "v2", None]),
        triggered_from=rng.choice(["app", None]),
    )  # fmt: skip


def partial(report: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """An earlier or stale report of the run: running, with some of its nodes."""
    keep = rng.randint(0, len(report["node_executions"]))
    return {**report, "status": "running", "finished_at": None,
            "node_executions": report["node_executions"][:keep]}  # fmt: skip


def ingest(engine: Engine, runs: list[dict[str, Any]]) -> None:
    with write_transaction(engine) as conn:
        tenant_id = ensure_tenant(conn, "acme")
        ingest_runs(conn, tenant_id, [RUN_CREATE.validate_python(r) for r in runs], prices=PRICES)


def _nonzero(value: Any) -> bool:
    """Sums taken back to zero may keep a float residue (1e-13) of the order of addition."""
    return abs(value) > 1e-6 if isinstance(value, float) else bool(value)


def stored_rollups(conn: Connection, table: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    node = table == "node_rollups"
    key = (*KEY, "node_id") if node else KEY
    sums, hists = (NODE_SUMS, NODE_HISTS) if node else (RUN_SUMS, RUN_HISTS)
    rows = conn.exec_driver_sql(f"SELECT {', '.join((*key, *sums, *hists))} FROM {table}")
    found = {}
    for row in rows:
        k, values = tuple(row[: len(key)]), row[len(key) :]
        figures = {name: values[i] for i, name in enumerate(sums)}
        figures.update({name: orjson.loads(values[len(sums) + i]) for i, name in enumerate(hists)})
        if any(_nonzero(v) for v in figures.values()):
            found[k] = figures
    return found


def expected_rollups(conn: Connection) -> tuple[dict[Any, Any], dict[Any, Any]]:
    pks = [pk for (pk,) in conn.exec_driver_sql("SELECT id FROM workflow_runs")]
    deltas = Deltas()
    for stored in read_stored_runs(conn, pks).values():
        deltas.add(stored.run.workflow_pk, contribution(stored.run, stored.nodes), +1)
    deltas = deltas.complete()

    def flat(items: dict[Any, Figures], sums: tuple[str, ...], hists: tuple[str, ...]) -> Any:
        out = {}
        for k, f in items.items():
            figures: dict[str, Any] = {name: f.sums.get(name, 0) for name in sums}
            figures.update({name: f.hists.get(name, {}) for name in hists})
            if any(_nonzero(v) for v in figures.values()):
                out[k] = figures
        return out

    return flat(deltas.runs, RUN_SUMS, RUN_HISTS), flat(deltas.nodes, NODE_SUMS, NODE_HISTS)


def assert_consistent(engine: Engine) -> None:
    with read_transaction(engine) as conn:
        runs, nodes = expected_rollups(conn)
        for table, expected in (("run_rollups", runs), ("node_rollups", nodes)):
            stored = stored_rollups(conn, table)
            assert stored.keys() == expected.keys(), table
            for k, figures in expected.items():
                for name, value in figures.items():
                    if isinstance(value, dict):
                        assert stored[k][name] == value, (table, k, name)
                    else:
                        assert stored[k][name] == pytest.approx(value, abs=1e-6), (table, k, name)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_order_of_reports_gives_the_rollups_of_the_final_state(
    engine: Engine, seed: int
) -> None:
    rng = random.Random(seed)
    finals = [final_report(f"r{i}", rng, hour=i % 30) for i in range(40)]
    reports = finals + [partial(r, rng) for r in finals for _ in range(2)]
    # Some runs change after they finished: slower, another status, another version.
    for r in rng.sample(finals, 8):
        changed = final_report(r["id"], random.Random(rng.random()), hour=rng.randrange(30))
        reports.append(changed)
    rng.shuffle(reports)
    for start in range(0, len(reports), 17):
        ingest(engine, reports[start : start + 17])
    assert_consistent(engine)
    with read_transaction(engine) as conn:
        assert (
            conn.exec_driver_sql(
                "SELECT SUM(runs) FROM run_rollups WHERE span_us = 3600000000 AND scope = 1"
            ).scalar()
            == 40
        )


def test_concurrent_writers_of_the_same_runs(engine: Engine) -> None:
    rng = random.Random(7)
    finals = [final_report(f"r{i}", rng, hour=i % 5) for i in range(30)]
    reports = finals + [partial(r, rng) for r in finals] * 2
    rng.shuffle(reports)
    errors: list[BaseException] = []

    def writer(chunk: list[dict[str, Any]]) -> None:
        try:
            for start in range(0, len(chunk), 10):
                ingest(engine, chunk[start : start + 10])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(reports[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert_consistent(engine)


def test_a_rejected_batch_leaves_the_rollups_untouched(engine: Engine) -> None:
    rng = random.Random(3)
    ingest(engine, [final_report("r1", rng, hour=1)])
    with read_transaction(engine) as conn:
        before = stored_rollups(conn, "run_rollups"), stored_rollups(conn, "node_rollups")
    other = {**final_report("r2", rng, hour=1), "workflow_id": "elsewhere"}
    moved = {**final_report("r1", rng, hour=1), "workflow_id": "elsewhere"}
    from flowscope.problems import IngestRejected

    with pytest.raises(IngestRejected):
        ingest(engine, [other, moved])
    with read_transaction(engine) as conn:
        after = stored_rollups(conn, "run_rollups"), stored_rollups(conn, "node_rollups")
    assert after == before
