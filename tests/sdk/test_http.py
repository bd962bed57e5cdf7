"""The Recorder over HTTP against real `uvicorn` servers: sending, spooling, replay, rejection."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine

from flowscope import Recorder
from flowscope.sdk.spool import REJECTED_FILE
from tests.conftest import KeyFactory
from tests.sdk.conftest import Serve, counts, stored_run
from tests.servers import free_port

NODES_PER_RUN = 3


def record(rec: Recorder, run_id: str, workflow_id: str = "triage", **node_fields: Any) -> None:
    with rec.run("support-bot", workflow_id, run_id=run_id) as run:
        with run.node("retrieve", "knowledge-retrieval", **node_fields):
            pass
        for i in range(NODES_PER_RUN - 1):
            with run.node(f"llm_{i}", "llm") as node:
                node.usage("gpt-4o-mini", "openai", prompt_tokens=900, completion_tokens=40)


def spool_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json"))


def test_runs_reach_the_server(
    serve: Serve, make_key: KeyFactory, engine: Engine, tenant_id: int, tmp_path: Path
) -> None:
    url = serve(free_port())
    with Recorder(url=url, api_key=make_key("ingest"), spool_dir=tmp_path) as rec:
        for i in range(3):
            record(rec, f"r{i}")
        assert rec.flush()
        assert (rec.stats.sent, rec.stats.spooled) == (3, 0)
    stored = stored_run(engine, tenant_id, "r2")
    assert (stored.status, stored.node_count, stored.total_tokens) == ("succeeded", 3, 1880)
    assert stored.cost is not None and stored.cost > 0
    assert counts(engine) == (3, 3 * NODES_PER_RUN)
    assert spool_files(tmp_path) == []


def test_runs_spool_while_the_server_is_down_and_replay_once_it_is_back(
    serve: Serve, make_key: KeyFactory, engine: Engine, tenant_id: int, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens here yet
    spool, kept = tmp_path / "spool", tmp_path / "kept"
    runs = 10
    rec = Recorder(
        url=f"http://127.0.0.1:{port}",
        api_key=make_key("ingest"),
        spool_dir=spool,
        batch_runs=4,
        flush_interval=60,
    )
    try:
        for i in range(runs):
            record(rec, f"r{i}")
        assert rec.flush()
        assert (rec.stats.sent, rec.stats.spooled) == (0, runs)
        spooled = [orjson.loads(p.read_bytes())["runs"] for p in spool_files(spool)]
        assert len(spooled) >= 3  # batches of at most 4
        assert sorted(r["id"] for batch in spooled for r in batch) == sorted(
            f"r{i}" for i in range(runs)
        )
        shutil.copytree(spool, kept)

        serve(port)
        assert rec.flush()  # a flush retries the spool
        assert rec.stats.replayed == runs
    finally:
        rec.close()
    assert spool_files(spool) == []
    assert counts(engine) == (runs, runs * NODES_PER_RUN)
    before = stored_run(engine, tenant_id, "r7")

    # The same batches once more, by a new recorder at start: nothing doubles.
    for path in spool_files(kept):
        shutil.copy(path, spool)
    with Recorder(
        url=f"http://127.0.0.1:{port}", api_key=make_key("ingest"), spool_dir=spool
    ) as again:
        assert again.flush()
        assert again.stats.replayed == runs
    assert spool_files(spool) == []
    assert counts(engine) == (runs, runs * NODES_PER_RUN)
    after = stored_run(engine, tenant_id, "r7")
    assert (after.node_count, after.total_tokens, after.cost) == (
        before.node_count,
        before.total_tokens,
        before.cost,
    )


def test_rejected_runs_are_set_aside_and_the_rest_of_the_batch_stored(
    serve: Serve, make_key: KeyFactory, engine: Engine, tenant_id: int, tmp_path: Path
) -> None:
    url = serve(free_port())
    with Recorder(
        url=url, api_key=make_key("ingest"), spool_dir=tmp_path, flush_interval=60
    ) as rec:
        record(rec, "taken")
        assert rec.flush()
        # One batch: invalid by the schema, valid, taken by another workflow, valid, and a NUL
        # character PostgreSQL cannot store (it was a 500, retried forever).
        record(rec, "bad-field", retry_count=-1)
        record(rec, "good-1")
        record(rec, "taken", workflow_id="other")
        record(rec, "good-2")
        record(rec, "nul", title="a\x00b")
        assert rec.flush()
        assert (rec.stats.sent, rec.stats.rejected, rec.stats.spooled) == (3, 3, 0)

    assert counts(engine) == (3, 3 * NODES_PER_RUN)
    stored_run(engine, tenant_id, "good-1")
    stored_run(engine, tenant_id, "good-2")
    lines = [orjson.loads(line) for line in (tmp_path / REJECTED_FILE).read_bytes().splitlines()]
    rejected = {line["run"]["id"]: line for line in lines}
    assert {(i, line["run"]["workflow_id"]) for i, line in rejected.items()} == {
        ("bad-field", "triage"),
        ("nul", "triage"),
        ("taken", "other"),
    }
    assert rejected["bad-field"]["errors"][0]["loc"][-1] == "retry_count"
    assert rejected["nul"]["errors"][0]["loc"][-1] == "title"
    assert rejected["nul"]["errors"][0]["type"] == "string_nul"
    assert rejected["taken"]["errors"][0]["loc"][-1] == "workflow_id"
    assert len(rejected["taken"]["run"]["node_executions"]) == NODES_PER_RUN


def test_a_refused_key_spools_until_a_good_one_replays(
    serve: Serve,
    make_key: KeyFactory,
    engine: Engine,
    tenant_id: int,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = serve(free_port())
    with (
        caplog.at_level(logging.ERROR, logger="flowscope.sdk"),
        Recorder(url=url, api_key=make_key("read"), spool_dir=tmp_path) as rec,
    ):
        record(rec, "r1")
        record(rec, "r2")
        assert rec.flush()
        assert (rec.stats.sent, rec.stats.spooled) == (0, 2)
    assert any("refused the runs" in r.getMessage() for r in caplog.records)
    assert counts(engine) == (0, 0)

    with Recorder(url=url, api_key=make_key("ingest"), spool_dir=tmp_path) as fixed:
        assert fixed.flush()
        assert fixed.stats.replayed == 2
    assert counts(engine) == (2, 2 * NODES_PER_RUN)
    assert stored_run(engine, tenant_id, "r1").status == "succeeded"
