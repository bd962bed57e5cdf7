"""`Recorder`: the entry point of the SDK; records runs without slowing the workflow down.

rec = Recorder(url="http://127.0.0.1:8000", api_key="fsk_...")
with rec.run(app_id="support-bot", workflow_id="triage") as run:
    with run.node("llm_1", node_type="llm", title="Classify") as node:
        node.usage(model="gpt-4o-mini", provider="openai", prompt_tokens=900,
                   completion_tokens=40)
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Unpack

from flowscope.sdk.batcher import Batcher, RecorderStats
from flowscope.sdk.cache import CacheClient, HttpCacheClient, LocalCacheClient, NodeCache
from flowscope.sdk.records import Run, RunFields
from flowscope.sdk.spool import Spool, default_spool_dir
from flowscope.sdk.transport import HttpTransport, Transport


class Recorder:
    """Records workflow runs to a flowscope server (`url`) or database (`database_url`).

    Runs are queued in memory and sent in batches by a background thread; what cannot be
    delivered is spooled to `spool_dir` and replayed later. Nothing here raises into, or
    waits inside, the workflow: when the queue is full, runs are dropped and counted.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        database_url: str | None = None,
        tenant: str | None = None,
        transport: Transport | None = None,
        spool_dir: str | Path | None = None,
        max_queue: int = 10_000,
        max_queue_node_executions: int = 200_000,
        batch_runs: int = 500,
        batch_node_executions: int = 5_000,
        flush_interval: float = 1.0,
        retry_interval: float = 5.0,
        timeout: float = 10.0,
    ) -> None:
        """Give exactly one of `url` (with `api_key`), `database_url` (with `tenant`), or a
        `transport`. `spool_dir` defaults to ~/.cache/flowscope/spool/<destination hash>."""
        if sum(x is not None for x in (url, database_url, transport)) != 1:
            raise ValueError("give exactly one of url=, database_url= or transport=")
        if url is not None:
            if not api_key:
                raise ValueError("url= needs api_key= (an ingest key, fsk_...)")
            transport = HttpTransport(url, api_key, timeout=timeout)
        elif database_url is not None:
            if not tenant:
                raise ValueError("database_url= needs tenant= (the tenant's name)")
            try:
                from flowscope.sdk.local import InProcessTransport  # heavy imports, only then
            except ModuleNotFoundError as missing:
                raise ImportError(
                    "Recorder(database_url=...) writes to the database in this process and "
                    "needs the server's packages: pip install 'flowscope[server]' "
                    f"({missing.name} is missing)"
                ) from missing

            transport = InProcessTransport(database_url, tenant)
        assert transport is not None
        self._cache_client_factory = _cache_client_factory(url, api_key, database_url, tenant)
        self._cache_clients: list[CacheClient] = []
        directory = Path(spool_dir) if spool_dir is not None else None
        self._spool = Spool(directory or default_spool_dir(transport.destination))
        self._batcher = Batcher(
            transport,
            self._spool,
            max_queue=max_queue,
            max_queue_nodes=max_queue_node_executions,
            batch_runs=batch_runs,
            batch_nodes=batch_node_executions,
            interval=flush_interval,
            retry_interval=retry_interval,
        )
        atexit.register(self.close)

    def run(
        self,
        app_id: str,
        workflow_id: str,
        *,
        run_id: str | None = None,
        **fields: Unpack[RunFields],
    ) -> Run:
        """A run to use in `with`; it is queued once, when it ends, with its node executions."""
        return Run(self._batcher.submit, app_id, workflow_id, run_id, fields)

    def cache(self, *, app_id: str, workflow_id: str) -> NodeCache:
        """The result cache of one workflow's nodes (see flowscope.sdk.cache)."""
        if self._cache_client_factory is None:
            raise ValueError("the cache needs a Recorder made with url= or database_url=")
        client = self._cache_client_factory()
        self._cache_clients.append(client)
        return NodeCache(client, app_id, workflow_id)

    @property
    def stats(self) -> RecorderStats:
        """Counts of run reports: queued, sent, spooled, replayed, dropped, rejected."""
        return self._batcher.stats()

    @property
    def spool_dir(self) -> Path:
        return self._spool.directory

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every run ended so far is sent or spooled; False if `timeout` passed."""
        return self._batcher.flush(timeout)

    def close(self, timeout: float | None = 10.0) -> bool:
        """Flush, then stop the background thread; runs ended afterwards are dropped."""
        atexit.unregister(self.close)
        for client in self._cache_clients:
            client.close()
        self._cache_clients = []
        done = self._batcher.flush(timeout, stop=True)
        self._batcher.join(timeout if done else 0)
        return done

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _cache_client_factory(
    url: str | None, api_key: str | None, database_url: str | None, tenant: str | None
) -> Callable[[], CacheClient] | None:
    if url is not None and api_key:
        return lambda: HttpCacheClient(url, api_key)
    if database_url is not None and tenant:
        return lambda: LocalCacheClient(database_url, tenant)
    return None
