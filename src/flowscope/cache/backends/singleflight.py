"""Single-flight: concurrent misses for one key compute once, and the others reuse it.

Within a process, the first caller to miss becomes the key's leader; later callers wait on
its flight and take its entry. If the leader fails, or is still busy after
`wait_timeout_s`, each waiter computes for itself: single-flight saves work, it never
withholds a result.

Across processes, the leader also takes a short lease from backends that can hold one
(Redis: `SET NX PX`; PostgreSQL: a session advisory lock). Without the lease it polls the
cache until another process stores the entry or releases the lease, and computes itself
after `wait_timeout_s`. The memory backend (one process) and SQLite (one host; processes
sharing a file) rely on the in-process part alone.

Use it over a FaultTolerantBackend: a failing cache then degrades to computing.

    flight = SingleFlight(FaultTolerantBackend(open_backend("redis://127.0.0.1:6379/0")))
    found = flight.get_or_compute(tenant_id, key, lambda: Entry.new(run_node(), ttl_s=3600, ...))
    found.entry.value, found.hit
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flowscope.cache.backends.base import CacheBackend, Entry, LeaseBackend


@dataclass(frozen=True)
class Lookup:
    """The entry for a key, and whether it was a hit: True when this call did not compute
    it (found in the cache, or computed by a concurrent caller)."""

    entry: Entry
    hit: bool


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    entry: Entry | None = None


class SingleFlight:
    """Deduplicates the computation of missing entries over one backend."""

    def __init__(
        self, backend: CacheBackend, *, lease_ttl_ms: int = 120_000, poll_s: float = 0.05
    ) -> None:
        self.backend = backend
        self.lease_ttl_ms = lease_ttl_ms
        self.poll_s = poll_s
        self._leases: LeaseBackend | None = backend if isinstance(backend, LeaseBackend) else None
        self._flights: dict[tuple[int, str], _Flight] = {}
        self._lock = threading.Lock()

    def get_or_compute(
        self,
        tenant_id: int,
        key: str,
        compute: Callable[[], Entry],
        *,
        wait_timeout_s: float = 60.0,
    ) -> Lookup:
        """The cached entry for the key, or the one `compute()` returns (then stored).

        `compute` builds the entry, typically with `Entry.new(value, ttl_s=..., ...)`; its
        exceptions propagate to this caller (and nothing is stored).
        """
        found = self.backend.get(tenant_id, key)
        if found is not None:
            return Lookup(found, hit=True)
        slot = (tenant_id, key)
        with self._lock:
            flight = self._flights.get(slot)
            leader = flight is None
            if flight is None:
                flight = self._flights[slot] = _Flight()
        if not leader:
            if flight.done.wait(wait_timeout_s) and flight.entry is not None:
                return Lookup(flight.entry, hit=True)
            return Lookup(self._compute_and_store(tenant_id, key, compute), hit=False)
        try:
            result = self._lead(tenant_id, key, compute, wait_timeout_s)
            flight.entry = result.entry
            return result
        finally:
            with self._lock:
                del self._flights[slot]
            flight.done.set()

    def _lead(
        self, tenant_id: int, key: str, compute: Callable[[], Entry], wait_timeout_s: float
    ) -> Lookup:
        if self._leases is None:
            # Another thread's flight may have ended between our miss and taking the lead.
            found = self.backend.get(tenant_id, key)
            if found is not None:
                return Lookup(found, hit=True)
            return Lookup(self._compute_and_store(tenant_id, key, compute), hit=False)
        deadline = time.monotonic() + wait_timeout_s
        leased = self._leases.acquire_lease(tenant_id, key, self.lease_ttl_ms)
        while not leased and time.monotonic() < deadline:
            time.sleep(self.poll_s)
            found = self.backend.get(tenant_id, key)
            if found is not None:
                return Lookup(found, hit=True)
            leased = self._leases.acquire_lease(tenant_id, key, self.lease_ttl_ms)
        try:
            # The previous lease holder may have stored it just before we took the lease.
            found = self.backend.get(tenant_id, key)
            if found is not None:
                return Lookup(found, hit=True)
            return Lookup(self._compute_and_store(tenant_id, key, compute), hit=False)
        finally:
            if leased:
                self._leases.release_lease(tenant_id, key)

    def _compute_and_store(self, tenant_id: int, key: str, compute: Callable[[], Entry]) -> Entry:
        entry = compute()
        self.backend.set(tenant_id, key, entry)
        return entry
