"""The Recorder in-process (straight into the database), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine

from flowscope import Recorder
from flowscope.runs.pricing import PriceBook
from flowscope.sdk import Outcome
from flowscope.sdk.local import InProcessTransport
from flowscope.sdk.spool import REJECTED_FILE
from flowscope.store.engine import make_engine
from tests.sdk.conftest import TENANT, counts, stored_run


@pytest.fixture
def rec(db_url: str, tmp_path: Path) -> Iterator[Recorder]:
    # A long flush interval: batches go when a test flushes, so each flush is one batch.
    recorder = Recorder(
        database_url=db_url, tenant=TENANT, spool_dir=tmp_path / "spool", flush_interval=60
    )
    yield recorder
    recorder.close()


class Boom(Exception):
    pass


def test_nested_threaded_and_async_nodes_are_stored(
    rec: Recorder, engine: Engine, tenant_id: int
) -> None:
    with rec.run("support-bot", "triage", workflow_version="v3", triggered_from="app") as run:
        with run.node("start", "start"):
            pass
        with run.node(
            "loop", "iteration", title="Each ticket", predecessor_node_id="start"
        ) as loop:

            def ticket(i: int) -> None:
                with run.node("classify", "llm", parent_id=loop.id, iteration_index=i) as node:
                    node.usage("gpt-4o-mini", "openai", prompt_tokens=900, completion_tokens=40)

            threads = [threading.Thread(target=ticket, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        async def tool(name: str) -> None:
            with run.node(name, "tool") as node:
                await asyncio.sleep(0.001)
                node.cache_hit()

        async def tools() -> None:
            await asyncio.gather(tool("search"), tool("fetch"))

        asyncio.run(tools())
        with run.node("answer", "llm") as node:
            node.usage("gpt-4o-mini", "openai", 100, 10, cost=0.5)
    assert rec.flush()

    stored = stored_run(engine, tenant_id, run.id)
    assert (stored.status, stored.workflow_version, stored.triggered_from) == (
        "succeeded",
        "v3",
        "app",
    )
    nodes = sorted(stored.node_executions, key=lambda n: n.index or 0)
    assert [n.index for n in nodes] == list(range(9))
    assert len({n.id for n in nodes}) == 9
    assert all(n.status == "succeeded" for n in nodes)
    # Index is the order of start.
    assert [n.started_at for n in nodes] == sorted(n.started_at for n in nodes)
    by_node = {n.node_id: n for n in nodes}
    assert by_node["loop"].predecessor_node_id == "start"
    assert by_node["loop"].title == "Each ticket"
    children = [n for n in nodes if n.node_id == "classify"]
    assert sorted(n.iteration_index or 0 for n in children) == [0, 1, 2, 3]
    for child in children:
        assert child.parent_id == by_node["loop"].id
        assert by_node["loop"].started_at <= child.started_at
        assert child.finished_at is not None and by_node["loop"].finished_at is not None
        assert child.finished_at <= by_node["loop"].finished_at
        assert (child.prompt_tokens, child.completion_tokens, child.total_tokens) == (900, 40, 940)
        assert child.cost_source == "estimated"
    assert by_node["answer"].cost_source == "reported"
    assert {by_node["search"].cache_hit, by_node["fetch"].cache_hit} == {True}
    assert (stored.prompt_tokens, stored.completion_tokens, stored.total_tokens) == (
        3700,
        170,
        3870,
    )
    estimate = PriceBook().estimate("openai", "gpt-4o-mini", 900, 40)
    assert estimate is not None and estimate > 0
    assert stored.cost == pytest.approx(0.5 + 4 * estimate)
    assert (stored.node_count, stored.cache_hits) == (9, 2)
    assert rec.stats.sent == 1


def test_an_exception_fails_node_and_run_and_propagates_unchanged(
    rec: Recorder, engine: Engine, tenant_id: int
) -> None:
    error = Boom("model overloaded")
    with pytest.raises(Boom) as caught:  # noqa: SIM117 (the nesting is the point)
        with rec.run("support-bot", "triage") as run:
            with run.node("prep", "code"):
                pass
            with run.node("llm_1", "llm") as node:
                node.usage("gpt-4o-mini", "openai", 900, 40)
                raise error
    assert caught.value is error
    assert rec.flush()

    stored = stored_run(engine, tenant_id, run.id)
    assert stored.status == "failed"
    assert stored.error == "Boom: model overloaded"
    by_node = {n.node_id: n for n in stored.node_executions}
    assert by_node["prep"].status == "succeeded"
    assert by_node["llm_1"].status == "failed"
    assert by_node["llm_1"].error == "Boom: model overloaded"
    assert by_node["llm_1"].prompt_tokens == 900
    assert stored.total_tokens == 940


def test_a_handled_failure_fails_only_its_node(
    rec: Recorder, engine: Engine, tenant_id: int
) -> None:
    with rec.run("support-bot", "triage") as run:
        try:
            with run.node("flaky", "http-request", retry_count=0):
                raise TimeoutError("upstream")
        except TimeoutError:
            with run.node("flaky", "http-request", retry_count=1):
                pass
    assert rec.flush()

    stored = stored_run(engine, tenant_id, run.id)
    assert stored.status == "succeeded"
    assert [(n.status, n.retry_count, n.error) for n in stored.node_executions] == [
        ("failed", 0, "TimeoutError: upstream"),
        ("succeeded", 1, None),
    ]


def test_interrupts_stop_and_explicit_statuses_win(
    rec: Recorder, engine: Engine, tenant_id: int
) -> None:
    with pytest.raises(KeyboardInterrupt), rec.run("support-bot", "triage") as stopped:  # noqa: SIM117
        with stopped.node("wait", "human-input"):
            raise KeyboardInterrupt
    with rec.run("support-bot", "triage") as partial:
        partial.end("partial-succeeded")
    assert rec.flush()

    assert stored_run(engine, tenant_id, stopped.id).status == "stopped"
    assert stored_run(engine, tenant_id, stopped.id).node_executions[0].status == "stopped"
    assert stored_run(engine, tenant_id, partial.id).status == "partial-succeeded"


def test_a_node_ending_after_its_run_is_sent_again(
    rec: Recorder, engine: Engine, tenant_id: int
) -> None:
    with rec.run("support-bot", "triage", run_id="r-late") as run:
        straggler = run.node("bg", "code").start()
    assert rec.flush()
    assert stored_run(engine, tenant_id, "r-late").node_executions[0].status == "running"

    straggler.end()
    assert rec.flush()
    stored = stored_run(engine, tenant_id, "r-late")
    assert [n.status for n in stored.node_executions] == ["succeeded"]
    assert (stored.status, stored.node_count) == ("succeeded", 1)


def test_invalid_runs_are_set_aside_and_the_rest_stored(
    rec: Recorder, engine: Engine, tenant_id: int
) -> None:
    with rec.run("support-bot", "triage", run_id="good-1") as run, run.node("a", "code"):
        pass
    with (
        rec.run("support-bot", "triage", run_id="bad") as run,
        run.node("a", "code", retry_count=-1),
    ):
        pass
    with rec.run("support-bot", "triage", run_id="good-2"):
        pass
    assert rec.flush()

    assert counts(engine) == (2, 1)
    stored_run(engine, tenant_id, "good-2")
    lines = (rec.spool_dir / REJECTED_FILE).read_bytes().splitlines()
    assert len(lines) == 1
    rejected = orjson.loads(lines[0])
    assert rejected["run"]["id"] == "bad"
    assert rejected["errors"][0]["loc"] == ["body", "runs", 1, "node_executions", 0, "retry_count"]
    assert (rec.stats.sent, rec.stats.rejected) == (2, 1)


def test_close_sends_everything_and_later_runs_are_dropped(
    db_url: str, tmp_path: Path, engine: Engine, tenant_id: int
) -> None:
    with Recorder(database_url=db_url, tenant=TENANT, spool_dir=tmp_path, flush_interval=60) as rec:
        for _ in range(3):
            with rec.run("support-bot", "triage") as run, run.node("a", "code"):
                pass
    assert counts(engine) == (3, 3)
    with rec.run("support-bot", "triage"):  # after close: must not raise
        pass
    assert (rec.stats.sent, rec.stats.dropped) == (3, 1)


def test_an_unmigrated_sqlite_file_is_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with (
        Recorder(database_url=url, tenant=TENANT, spool_dir=tmp_path / "spool") as rec,
        rec.run("support-bot", "triage") as run,
        run.node("a", "llm") as node,
    ):
        node.usage("gpt-4o-mini", "openai", 10, 5)
    assert rec.stats.sent == 1
    engine = make_engine(url)
    try:
        assert counts(engine) == (1, 1)
    finally:
        engine.dispose()


class GatedTransport:
    """The real in-process transport behind a gate: holds the background thread in `send`."""

    def __init__(self, inner: InProcessTransport) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.gate = threading.Event()

    @property
    def destination(self) -> str:
        return self.inner.destination

    def send(self, runs: list[dict[str, Any]]) -> Outcome:
        self.entered.set()
        assert self.gate.wait(30)
        return self.inner.send(runs)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize(
    ("max_runs", "max_nodes", "nodes_per_run", "kept"),
    [(5, 1000, 1, 5), (100, 10, 4, 2)],
    ids=["runs-bound", "node-bound"],
)
def test_a_full_queue_drops_counts_and_warns_once(
    db_url: str,
    tmp_path: Path,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
    max_runs: int,
    max_nodes: int,
    nodes_per_run: int,
    kept: int,
) -> None:
    transport = GatedTransport(InProcessTransport(db_url, TENANT))
    rec = Recorder(
        transport=transport,
        spool_dir=tmp_path,
        max_queue=max_runs,
        max_queue_node_executions=max_nodes,
        flush_interval=0.01,
    )

    def record() -> None:
        with rec.run("support-bot", "triage") as run:
            for i in range(nodes_per_run):
                with run.node(f"n{i}", "code"):
                    pass

    try:
        record()
        assert transport.entered.wait(10)  # the background thread is now held in send
        with caplog.at_level(logging.WARNING, logger="flowscope.sdk"):
            for _ in range(kept + 3):
                record()
        assert (rec.stats.queued, rec.stats.dropped) == (kept, 3)
        warnings = [r for r in caplog.records if "queue is full" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        transport.gate.set()
        assert rec.close()
    assert (rec.stats.sent, rec.stats.dropped) == (1 + kept, 3)
    assert counts(engine) == (1 + kept, (1 + kept) * nodes_per_run)
