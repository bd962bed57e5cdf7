"""The interface every cache backend implements, and the wrapper that makes faults misses.

Entries are scoped by tenant: every backend stores (tenant_id, key), so identical keys in two
tenants never share an entry. Times are integer epoch microseconds, as in the tables.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from flowscope.timeutil import now_us as _now_us

log = logging.getLogger("flowscope.cache")

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """One cached node result: `value` is the already-serialised JSON, `size` its length."""

    value: bytes
    stored_at_us: int
    expires_at_us: int
    app_id: str
    workflow_id: str
    node_id: str
    node_type: str
    elapsed_ms: float | None = None
    cost: float | None = None
    size: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", len(self.value))

    @classmethod
    def new(
        cls,
        value: bytes,
        *,
        ttl_s: float,
        app_id: str,
        workflow_id: str,
        node_id: str,
        node_type: str,
        elapsed_ms: float | None = None,
        cost: float | None = None,
        now_us: int | None = None,
    ) -> Entry:
        """An entry stored now that lives `ttl_s` seconds."""
        stored = _now_us() if now_us is None else now_us
        return cls(
            value=value,
            stored_at_us=stored,
            expires_at_us=stored + round(ttl_s * 1_000_000),
            app_id=app_id,
            workflow_id=workflow_id,
            node_id=node_id,
            node_type=node_type,
            elapsed_ms=elapsed_ms,
            cost=cost,
        )

    def ttl_ms(self, now_us: int | None = None) -> int:
        """Milliseconds left to live (0 once expired)."""
        now = _now_us() if now_us is None else now_us
        return max(0, (self.expires_at_us - now) // 1_000)


class CacheBackend(Protocol):
    """Where cache entries live. Every method is synchronous and thread-safe."""

    def get(self, tenant_id: int, key: str) -> Entry | None:
        """The tenant's entry for `key`, or None; never an expired entry."""
        ...

    def set(self, tenant_id: int, key: str, entry: Entry) -> None:
        """Store `entry`, replacing any entry the tenant had for `key`."""
        ...

    def invalidate(
        self,
        tenant_id: int,
        *,
        app_id: str,
        workflow_id: str,
        node_type: str | None = None,
        node_id: str | None = None,
        key: str | None = None,
        all: bool = False,
    ) -> int:
        """Remove the workflow's entries matching exactly one selector; how many went."""
        ...

    def cleanup(self, now_us: int | None = None) -> int:
        """Remove entries expired at `now_us` (default: now); how many went."""
        ...

    def stats(self, tenant_id: int, app_id: str, workflow_id: str) -> tuple[int, int]:
        """(live entries, bytes of their values) of one workflow."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class LeaseBackend(Protocol):
    """A backend that can hold short leases across processes (Redis, PostgreSQL)."""

    def acquire_lease(self, tenant_id: int, key: str, ttl_ms: int) -> bool:
        """True if this process now holds the lease on the key (nobody else does)."""
        ...

    def release_lease(self, tenant_id: int, key: str) -> None: ...


def selector(
    node_type: str | None, node_id: str | None, key: str | None, all: bool
) -> tuple[str, str | None]:
    """The one invalidation selector given, as (column, value); ("all", None) for all."""
    given: list[tuple[str, str | None]] = [
        (name, value)
        for name, value in (("node_type", node_type), ("node_id", node_id), ("key", key))
        if value is not None
    ]
    if all:
        given.append(("all", None))
    if len(given) != 1:
        raise ValueError("invalidate takes exactly one of node_type, node_id, key or all=True")
    return given[0]


_LOG_EVERY_S = 60.0


class FaultTolerantBackend:
    """A backend whose faults never reach the caller: a failed or slow lookup is a miss, a
    store is dropped, invalidate/cleanup/stats report 0, and each fault counts in `errors`.

    The first fault is logged, then at most one line a minute (with the count since).
    Lookups, stores and leases get a deadline of `timeout_s` (None: none), enforced here
    for every backend by running them on a small thread pool: a call still running at the
    deadline is abandoned (it finishes in the background; a store may land late). Backends
    bound their own calls too (Redis socket timeouts, PostgreSQL statement_timeout), so
    abandoned calls do not pile up. Invalidate, cleanup and stats run inline, without a
    deadline: they are administrative and may legitimately take longer.
    """

    def __init__(
        self, backend: CacheBackend, timeout_s: float | None = 0.05, *, max_workers: int = 8
    ) -> None:
        self.inner = backend
        self.timeout_s = timeout_s
        self.errors = 0
        self._lock = threading.Lock()
        self._logged_at: float | None = None
        self._unlogged = 0
        self._pool = (
            ThreadPoolExecutor(max_workers, thread_name_prefix="flowscope-cache")
            if timeout_s is not None
            else None
        )

    def get(self, tenant_id: int, key: str) -> Entry | None:
        return self._bounded("get", None, self.inner.get, tenant_id, key)

    def set(self, tenant_id: int, key: str, entry: Entry) -> None:
        self._bounded("set", None, self.inner.set, tenant_id, key, entry)

    def invalidate(
        self,
        tenant_id: int,
        *,
        app_id: str,
        workflow_id: str,
        node_type: str | None = None,
        node_id: str | None = None,
        key: str | None = None,
        all: bool = False,
    ) -> int:
        selector(node_type, node_id, key, all)  # a bad call is the caller's bug: raise it
        return self._inline(
            "invalidate",
            0,
            lambda: self.inner.invalidate(
                tenant_id,
                app_id=app_id,
                workflow_id=workflow_id,
                node_type=node_type,
                node_id=node_id,
                key=key,
                all=all,
            ),
        )

    def cleanup(self, now_us: int | None = None) -> int:
        return self._inline("cleanup", 0, lambda: self.inner.cleanup(now_us))

    def stats(self, tenant_id: int, app_id: str, workflow_id: str) -> tuple[int, int]:
        return self._inline(
            "stats", (0, 0), lambda: self.inner.stats(tenant_id, app_id, workflow_id)
        )

    def acquire_lease(self, tenant_id: int, key: str, ttl_ms: int) -> bool:
        """Without lease support, or when the backend fails, every caller may compute."""
        inner = self.inner
        if not isinstance(inner, LeaseBackend):
            return True

        def release_if_granted(late: Future[bool]) -> None:
            # Granted after we gave up on it: nobody would release it.
            if not late.cancelled() and late.exception() is None and late.result():
                self._inline("release_lease", None, lambda: inner.release_lease(tenant_id, key))

        return self._bounded(
            "acquire_lease",
            True,
            inner.acquire_lease,
            tenant_id,
            key,
            ttl_ms,
            abandoned=release_if_granted,
        )

    def release_lease(self, tenant_id: int, key: str) -> None:
        if isinstance(self.inner, LeaseBackend):
            self._bounded("release_lease", None, self.inner.release_lease, tenant_id, key)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._inline("close", None, self.inner.close)

    def _bounded(
        self,
        name: str,
        fallback: T,
        fn: Callable[..., T],
        *args: Any,
        abandoned: Callable[[Future[T]], None] | None = None,
    ) -> T:
        if self._pool is None:
            return self._inline(name, fallback, lambda: fn(*args))
        try:
            future = self._pool.submit(fn, *args)
            try:
                return future.result(timeout=self.timeout_s)
            except FutureTimeout:
                if not future.cancel() and abandoned is not None:
                    future.add_done_callback(abandoned)
                raise TimeoutError(f"took longer than {self.timeout_s} s") from None
        except Exception as exc:
            self._record(name, exc)
            return fallback

    def _inline(self, name: str, fallback: T, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except Exception as exc:
            self._record(name, exc)
            return fallback

    def _record(self, name: str, exc: BaseException) -> None:
        with self._lock:
            self.errors += 1
            now = time.monotonic()
            if self._logged_at is not None and now - self._logged_at < _LOG_EVERY_S:
                self._unlogged += 1
                return
            since, self._unlogged, self._logged_at = self._unlogged, 0, now
        log.warning(
            "cache backend %s failed (%s: %s); treated as a miss%s",
            name,
            type(exc).__name__,
            exc,
            f"; {since} more failures since the last report" if since else "",
        )
