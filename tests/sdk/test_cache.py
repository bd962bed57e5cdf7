"""The SDK's result cache: over HTTP against a real server, and straight into a database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from flowscope import Recorder
from flowscope.sdk.cache import HttpCacheClient, NodeCache
from tests.conftest import KeyFactory
from tests.sdk.conftest import TENANT, Serve, stored_run
from tests.servers import free_port

CONFIG = {"dataset_ids": ["d1"], "top_k": 4}


def exercise(rec: Recorder, engine: Engine, tenant_id: int) -> None:
    cache = rec.cache(app_id="support-bot", workflow_id="triage")
    calls: list[dict[str, Any]] = []

    def retrieve(query: str) -> list[str]:
        calls.append({"query": query})
        return [f"chunk about {query}"]

    with rec.run("support-bot", "triage", run_id="r1") as run:
        for query in ("order", "order", "refund"):
            with run.node("kb_1", "knowledge-retrieval") as node:
                found = cache.get_or_compute(
                    "kb_1", "knowledge-retrieval", CONFIG, {"query": query},
                    lambda q=query: retrieve(q), node=node,
                )  # fmt: skip
                assert found == [f"chunk about {query}"]
    assert calls == [{"query": "order"}, {"query": "refund"}]  # the repeat was a hit

    # Not cacheable by policy (temperature 0.7): computed every time.
    llm_config = {"model": {"name": "gpt-4o-mini"}, "temperature": 0.7}
    for _ in range(2):
        cache.get_or_compute("llm_1", "llm", llm_config, {"q": "hi"}, lambda: calls.append({}))
    assert len(calls) == 4

    # A failing compute propagates and stores nothing.
    with pytest.raises(RuntimeError, match="boom"):
        cache.get_or_compute("kb_1", "knowledge-retrieval", CONFIG, {"query": "x"}, _boom)
    assert (
        cache.get_or_compute("kb_1", "knowledge-retrieval", CONFIG, {"query": "x"}, lambda: 7) == 7
    )

    @cache.node("normalize", "code", {"code": "v1", "deterministic": True})
    def normalize(*, text: str) -> str:
        calls.append({"text": text})
        return text.strip().lower()

    assert normalize(text=" Hi ") == "hi" and normalize(text=" Hi ") == "hi"
    assert calls[-1] == {"text": " Hi "} and len(calls) == 5
    assert cache.errors == 0
    assert rec.flush()
    nodes = stored_run(engine, tenant_id, "r1").node_executions
    assert [(n.cache_hit, n.cache_lookup) for n in nodes] == [
        (False, True),
        (True, True),
        (False, True),
    ]


def _boom() -> None:
    raise RuntimeError("boom")


def test_over_http(
    serve: Serve, make_key: KeyFactory, engine: Engine, tenant_id: int, tmp_path: Path
) -> None:
    url = serve(free_port())
    with Recorder(url=url, api_key=make_key("ingest", tenant=TENANT), spool_dir=tmp_path) as rec:
        exercise(rec, engine, tenant_id)


def test_in_process(db_url: str, engine: Engine, tenant_id: int, tmp_path: Path) -> None:
    with Recorder(database_url=db_url, tenant=TENANT, spool_dir=tmp_path) as rec:
        exercise(rec, engine, tenant_id)


def test_an_unreachable_server_is_a_miss_and_never_an_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens
    with Recorder(url=url, api_key="fsk_x", spool_dir=tmp_path) as rec:
        cache = rec.cache(app_id="a", workflow_id="w")
        assert cache.get_or_compute("n", "knowledge-retrieval", {}, {"q": 1}, lambda: 42) == 42
        assert cache.errors == 2  # the lookup and the store, each a miss


def test_concurrent_misses_compute_once(db_url: str, tenant_id: int, tmp_path: Path) -> None:
    import threading
    import time

    calls: list[int] = []
    results: list[Any] = []
    with Recorder(database_url=db_url, tenant=TENANT, spool_dir=tmp_path) as rec:
        cache = rec.cache(app_id="support-bot", workflow_id="triage")

        def slow() -> str:
            calls.append(1)
            time.sleep(0.3)  # the others arrive while this computes
            return "answer"

        def worker() -> None:
            results.append(
                cache.get_or_compute("kb_1", "knowledge-retrieval", CONFIG, {"q": "same"}, slow)
            )

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert calls == [1] and results == ["answer"] * 8


def test_callers_that_do_not_share_a_process_compute_once(
    serve: Serve,
    make_key: KeyFactory,
    tenant_id: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Separate cache clients (as separate engine processes would have) through one server:
    the first to miss takes the lease, the others wait for its result. Timeouts are generous:
    on a loaded machine a slow lookup would count as a miss and the caller compute."""
    import threading
    import time

    monkeypatch.setenv("FLOWSCOPE_CACHE_TIMEOUT_MS", "30000")  # the server's own
    url = serve(free_port())
    api_key = make_key("ingest", tenant=TENANT)
    calls: list[int] = []
    results: list[Any] = []

    def slow() -> str:
        calls.append(1)
        time.sleep(0.5)
        return "answer"

    def engine_process(i: int) -> None:
        client = HttpCacheClient(url, api_key, timeout=30)
        try:
            cache = NodeCache(client, "support-bot", "triage")
            results.append(
                cache.get_or_compute("kb_1", "knowledge-retrieval", CONFIG, {"q": "same"}, slow)
            )
        finally:
            client.close()

    threads = [threading.Thread(target=engine_process, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1] and results == ["answer"] * 4
