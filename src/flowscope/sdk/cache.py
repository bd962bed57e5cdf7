"""The result cache from Python: `cache = rec.cache(app_id=..., workflow_id=...)`.

`cache.get_or_compute(node_id, node_type, config, inputs, compute)` returns the cached result
when there is one and otherwise runs `compute()` and stores what it returns, if the
workflow's policy allows caching the node (the server decides). `@cache.node(...)` does the
same for a Python function, its keyword arguments being the inputs. Pass `node=` (a recorded
node execution) and the lookup is recorded on it, so analytics see hits and misses.

The cache never breaks the workflow: any failure to reach it is a miss, or a store skipped,
and `compute`'s own exceptions propagate unchanged (a failure is never cached).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import httpx
import orjson

from flowscope import __version__
from flowscope.sdk.records import Node

log = logging.getLogger("flowscope.sdk")
T = TypeVar("T")
_MISSING = object()


class CacheClient(Protocol):
    """Looks results up and stores them: over HTTP, or straight into a flowscope database."""

    def lookup(self, request: dict[str, Any]) -> tuple[bool, Any, bool | None]:
        """(hit, value, lease): `lease` as the API's, when `lease_ms` is in the request."""
        ...

    def store(self, request: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class HttpCacheClient:
    """POST /api/v1/cache/lookup and /store, with a short timeout: a slow cache is a miss."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 0.5) -> None:
        self._client = httpx.Client(
            base_url=url.rstrip("/"),
            timeout=timeout,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "User-Agent": f"flowscope-python/{__version__}",
            },
        )

    def lookup(self, request: dict[str, Any]) -> tuple[bool, Any, bool | None]:
        response = self._client.post("/api/v1/cache/lookup", content=orjson.dumps(request))
        response.raise_for_status()
        found = orjson.loads(response.content)
        return bool(found["hit"]), found.get("value"), found.get("lease")

    def store(self, request: dict[str, Any]) -> None:
        self._client.post("/api/v1/cache/store", content=orjson.dumps(request)).raise_for_status()

    def close(self) -> None:
        self._client.close()


class LocalCacheClient:
    """The cache of a flowscope database, without a server (as `Recorder(database_url=...)`)."""

    def __init__(self, database_url: str, tenant: str, cache_url: str = "sql://") -> None:
        from flowscope.cache.backends import open_backend
        from flowscope.cache.backends.base import FaultTolerantBackend
        from flowscope.store import migrate
        from flowscope.store.engine import make_engine, write_transaction
        from flowscope.tenancy.keys import ensure_tenant

        self._engine = make_engine(database_url, pool_size=1)
        migrate.upgrade_if_embedded(self._engine)
        with write_transaction(self._engine) as conn:
            self._tenant_id = ensure_tenant(conn, tenant)
        self._tenant = tenant
        self._backend = FaultTolerantBackend(open_backend(cache_url, engine=self._engine))

    def _call(self, request: dict[str, Any]) -> Any:
        from flowscope.cache.service import NodeCall

        return NodeCall(
            request["app_id"], request["workflow_id"], request["node_id"],
            request["node_type"], request["config"], request["inputs"],
        )  # fmt: skip

    def lookup(self, request: dict[str, Any]) -> tuple[bool, Any, bool | None]:
        from flowscope.cache import service
        from flowscope.store.engine import read_transaction

        with read_transaction(self._engine) as conn:
            found = service.lookup(
                conn, self._backend, self._tenant_id, self._tenant, self._call(request),
                lease_ms=request.get("lease_ms"),
            )  # fmt: skip
        entry = found.entry
        return found.hit, None if entry is None else orjson.loads(entry.value), found.lease

    def store(self, request: dict[str, Any]) -> None:
        from flowscope.cache import service
        from flowscope.store.engine import read_transaction

        with read_transaction(self._engine) as conn:
            service.store(
                conn, self._backend, self._tenant_id, self._tenant, self._call(request),
                request["value"], status=request.get("status", "succeeded"),
                elapsed_ms=request.get("elapsed_ms"),
            )  # fmt: skip

    def close(self) -> None:
        self._backend.close()
        self._engine.dispose()


class _Flight:
    """One computation in progress that other threads asking for the same result wait on."""

    __slots__ = ("done", "ok", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False
        self.value: Any = None


class NodeCache:
    """The cache of one workflow's nodes (see the module docstring).

    Single-flight within the process: concurrent calls for the same node and inputs compute
    once; the others wait (up to `wait_timeout` seconds) and take that result, or compute
    themselves if it failed or took too long.
    """

    def __init__(
        self, client: CacheClient, app_id: str, workflow_id: str, *, wait_timeout: float = 60.0
    ) -> None:
        self._client = client
        self.app_id = app_id
        self.workflow_id = workflow_id
        self.wait_timeout = wait_timeout
        self.errors = 0
        self._lock = threading.Lock()
        self._flights: dict[bytes, _Flight] = {}

    def get_or_compute(
        self,
        node_id: str,
        node_type: str,
        config: Mapping[str, Any],
        inputs: Mapping[str, Any],
        compute: Callable[[], T],
        *,
        node: Node | None = None,
    ) -> T:
        """The cached result, or `compute()`'s (then stored when the policy allows)."""
        try:
            fingerprint = hashlib.sha256(
                orjson.dumps([node_id, node_type, config, inputs], option=orjson.OPT_SORT_KEYS)
            ).digest()
        except TypeError:  # not JSON: the server will say it cannot be cached
            return self._get_or_compute(node_id, node_type, config, inputs, compute, node)
        with self._lock:
            flight = self._flights.get(fingerprint)
            leading = flight is None
            if flight is None:
                flight = self._flights[fingerprint] = _Flight()
        if not leading:
            if flight.done.wait(self.wait_timeout) and flight.ok:
                if node is not None:
                    node.cache_hit(True)
                return flight.value  # type: ignore[no-any-return]
            return self._get_or_compute(node_id, node_type, config, inputs, compute, node)
        try:
            flight.value = self._get_or_compute(node_id, node_type, config, inputs, compute, node)
            flight.ok = True
            return flight.value  # type: ignore[no-any-return]
        finally:
            with self._lock:
                self._flights.pop(fingerprint, None)
            flight.done.set()

    def _get_or_compute(
        self,
        node_id: str,
        node_type: str,
        config: Mapping[str, Any],
        inputs: Mapping[str, Any],
        compute: Callable[[], T],
        node: Node | None,
    ) -> T:
        request: dict[str, Any] = {
            "app_id": self.app_id,
            "workflow_id": self.workflow_id,
            "node_id": node_id,
            "node_type": node_type,
            "config": dict(config),
            "inputs": dict(inputs),
        }
        hit, value = self._lookup_or_wait(request)
        if node is not None:
            node.cache_hit(hit)
        if hit:
            return value  # type: ignore[no-any-return]
        started = time.perf_counter()
        try:
            result = compute()
        except BaseException:  # the caller's: nothing is stored, and waiters stop waiting
            try:
                self._client.store({**request, "value": None, "status": "failed"})
            except Exception as error:
                self._fault("store", error)
            raise
        elapsed_ms = (time.perf_counter() - started) * 1000
        try:
            self._client.store({**request, "value": result, "elapsed_ms": elapsed_ms})
        except Exception as error:
            self._fault("store", error)
        return result

    def _lookup_or_wait(self, request: dict[str, Any]) -> tuple[bool, Any]:
        """Look up; on a miss another caller (in any process) is computing, wait for its
        result until `wait_timeout`, then compute anyway."""
        lease_ms = max(100, min(600_000, round(self.wait_timeout * 1000)))
        deadline = time.monotonic() + self.wait_timeout
        pause = 0.02
        while True:
            try:
                hit, value, lease = self._client.lookup({**request, "lease_ms": lease_ms})
            except Exception as error:  # the cache must never break the workflow
                self._fault("lookup", error)
                return False, _MISSING
            if hit or lease is not False or time.monotonic() >= deadline:
                return hit, value
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def node(
        self, node_id: str, node_type: str = "code", config: Mapping[str, Any] | None = None
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Cache a Python node function: its keyword arguments are the node's inputs.

        >>> # @cache.node("normalize", "code", {"code": "v1", "deterministic": True})
        >>> # def normalize(*, text: str) -> str: ...
        """

        def decorate(function: Callable[..., T]) -> Callable[..., T]:
            @functools.wraps(function)
            def wrapper(**inputs: Any) -> T:
                return self.get_or_compute(
                    node_id, node_type, config or {}, inputs, lambda: function(**inputs)
                )

            return wrapper

        return decorate

    def _fault(self, what: str, error: Exception) -> None:
        self.errors += 1
        if self.errors == 1:
            log.warning("flowscope cache %s failed (a miss; counted, logged once): %s", what, error)
