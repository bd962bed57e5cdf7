"""The contract every cache backend keeps: memory, SQLite, PostgreSQL and Redis alike."""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from flowscope.cache.backends import (
    CacheBackend,
    Entry,
    FaultTolerantBackend,
    LeaseBackend,
    SingleFlight,
    open_backend,
)
from flowscope.cache.backends.memory import MemoryBackend
from flowscope.store.engine import make_engine, write_transaction


def key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def entry(
    value: bytes = b'{"answer": 42}',
    *,
    ttl_s: float = 60,
    app: str = "app",
    workflow: str = "wf",
    node: str = "n1",
    node_type: str = "llm",
    elapsed_ms: float | None = 12.5,
    cost: float | None = 0.002,
) -> Entry:
    return Entry.new(
        value,
        ttl_s=ttl_s,
        app_id=app,
        workflow_id=workflow,
        node_id=node,
        node_type=node_type,
        elapsed_ms=elapsed_ms,
        cost=cost,
    )


def test_miss_then_hit(backend: CacheBackend) -> None:
    assert backend.get(1, key("a")) is None
    stored = entry()
    backend.set(1, key("a"), stored)
    assert backend.get(1, key("a")) == stored
    assert stored.size == len(stored.value)


def test_optional_figures_round_trip(backend: CacheBackend) -> None:
    stored = entry(b"null", elapsed_ms=None, cost=None)
    backend.set(1, key("a"), stored)
    assert backend.get(1, key("a")) == stored


def test_set_replaces_the_entry(backend: CacheBackend) -> None:
    backend.set(1, key("a"), entry(b"1", cost=1.0))
    second = entry(b"22", elapsed_ms=None, cost=None)
    backend.set(1, key("a"), second)
    assert backend.get(1, key("a")) == second
    assert backend.stats(1, "app", "wf") == (1, 2)


def test_expired_entries_are_misses(backend: CacheBackend) -> None:
    backend.set(1, key("short"), entry(ttl_s=0.1))
    backend.set(1, key("long"), entry(ttl_s=60))
    assert backend.get(1, key("short")) is not None
    time.sleep(0.3)
    assert backend.get(1, key("short")) is None
    assert backend.get(1, key("long")) is not None
    assert backend.stats(1, "app", "wf") == (1, len(entry().value))


def _populate(backend: CacheBackend) -> None:
    """Workflow app/wf: n1 and n2 (llm), n3 (code); app/other: n1; tenant 2: copies."""
    for tenant in (1, 2):
        backend.set(tenant, key("a"), entry(node="n1", node_type="llm"))
        backend.set(tenant, key("b"), entry(node="n2", node_type="llm"))
        backend.set(tenant, key("c"), entry(node="n3", node_type="code"))
        backend.set(tenant, key("d"), entry(workflow="other", node="n1", node_type="llm"))


@pytest.mark.parametrize(
    ("selector", "removed", "left"),
    [
        ({"node_type": "llm"}, 2, {"c", "d"}),
        ({"node_id": "n1"}, 1, {"b", "c", "d"}),
        ({"key": key("b")}, 1, {"a", "c", "d"}),
        ({"key": key("d")}, 0, {"a", "b", "c", "d"}),  # that key belongs to another workflow
        ({"all": True}, 3, {"d"}),
        ({"node_type": "none-such"}, 0, {"a", "b", "c", "d"}),
    ],
)
def test_invalidate_by_each_selector(
    backend: CacheBackend, selector: dict[str, object], removed: int, left: set[str]
) -> None:
    _populate(backend)
    assert backend.invalidate(1, app_id="app", workflow_id="wf", **selector) == removed  # type: ignore[arg-type]
    assert {name for name in "abcd" if backend.get(1, key(name))} == left
    assert all(backend.get(2, key(name)) for name in "abcd"), "another tenant's entries stay"
    assert backend.stats(1, "app", "wf")[0] == len(left - {"d"})


@pytest.mark.parametrize(
    "selector", [{}, {"node_type": "llm", "node_id": "n1"}, {"key": key("a"), "all": True}]
)
def test_invalidate_needs_exactly_one_selector(
    backend: CacheBackend, selector: dict[str, object]
) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        backend.invalidate(1, app_id="app", workflow_id="wf", **selector)  # type: ignore[arg-type]


def test_cleanup_counts_expired_entries(backend: CacheBackend) -> None:
    for name in ("a", "b", "c"):
        backend.set(1, key(name), entry(ttl_s=0.05, node=name))
    backend.set(2, key("a"), entry(ttl_s=0.05))
    backend.set(1, key("live"), entry(ttl_s=60))
    time.sleep(0.2)
    assert backend.cleanup() == 4
    assert backend.cleanup() == 0
    assert backend.get(1, key("live")) is not None
    assert backend.cleanup(now_us=entry(ttl_s=3600).expires_at_us) == 1
    assert backend.get(1, key("live")) is None


def test_tenants_never_share_entries(backend: CacheBackend) -> None:
    backend.set(1, key("same"), entry(b'"one"'))
    assert backend.get(2, key("same")) is None
    backend.set(2, key("same"), entry(b'"two!"'))
    one, two = backend.get(1, key("same")), backend.get(2, key("same"))
    assert one is not None and two is not None
    assert (one.value, two.value) == (b'"one"', b'"two!"')
    assert backend.stats(1, "app", "wf") == (1, 5)
    assert backend.stats(2, "app", "wf") == (1, 6)
    assert backend.invalidate(1, app_id="app", workflow_id="wf", all=True) == 1
    assert backend.get(1, key("same")) is None
    assert backend.get(2, key("same")) == two


def test_stats_count_live_entries_and_bytes(backend: CacheBackend) -> None:
    assert backend.stats(1, "app", "wf") == (0, 0)
    backend.set(1, key("a"), entry(b"x" * 10))
    backend.set(1, key("b"), entry(b"y" * 20, node="n2"))
    backend.set(1, key("c"), entry(b"z" * 30, workflow="other"))
    backend.set(1, key("d"), entry(b"w" * 40, ttl_s=0.05))
    time.sleep(0.15)
    assert backend.stats(1, "app", "wf") == (2, 30)
    assert backend.stats(1, "app", "other") == (1, 30)
    assert backend.stats(1, "nope", "wf") == (0, 0)


def test_memory_keeps_the_most_recently_used() -> None:
    backend = MemoryBackend(max_entries=3)
    for name in "abc":
        backend.set(1, key(name), entry(node=name))
    assert backend.get(1, key("a")) is not None  # a is now the most recently used
    backend.set(1, key("d"), entry(node="d"))
    assert backend.get(1, key("b")) is None
    assert all(backend.get(1, key(name)) for name in "acd")
    assert backend.stats(1, "app", "wf") == (3, 3 * len(entry().value))


def test_open_backend_by_url(sqlite_cache_url: str) -> None:
    assert isinstance(open_backend("memory://?max_entries=5"), MemoryBackend)
    assert open_backend("memory://?max_entries=5").max_entries == 5  # type: ignore[attr-defined]
    sql = open_backend(sqlite_cache_url)
    stored = entry()
    sql.set(1, key("a"), stored)
    assert sql.get(1, key("a")) == stored
    sql.close()
    with pytest.raises(ValueError, match=r"memory://.*redis://"):
        open_backend("memcached://localhost")
    with pytest.raises(ValueError, match="engine"):
        open_backend("sql://")


# -- single-flight -------------------------------------------------------------------------


@pytest.mark.parametrize("fault_tolerant", [False, True], ids=["bare", "fault-tolerant"])
def test_concurrent_misses_compute_once(backend: CacheBackend, fault_tolerant: bool) -> None:
    cache = FaultTolerantBackend(backend, timeout_s=5) if fault_tolerant else backend
    flight = SingleFlight(cache, poll_s=0.01)
    calls: list[int] = []
    threads = 8
    start = threading.Barrier(threads)
    results: list[tuple[bytes, bool]] = []

    def compute() -> Entry:
        calls.append(1)
        time.sleep(0.3)
        return entry(b'"computed"')

    def worker() -> None:
        start.wait()
        found = flight.get_or_compute(1, key("slow"), compute, wait_timeout_s=20)
        results.append((found.entry.value, found.hit))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert len(calls) == 1
    assert len(results) == threads
    assert {value for value, _ in results} == {b'"computed"'}
    assert sorted(hit for _, hit in results) == [False] + [True] * (threads - 1)
    again = flight.get_or_compute(1, key("slow"), compute)
    assert again.hit and len(calls) == 1


def test_waiters_compute_themselves_when_the_leader_fails(backend: CacheBackend) -> None:
    flight = SingleFlight(backend, poll_s=0.01)
    leader_started = threading.Event()
    calls: list[str] = []
    lock = threading.Lock()

    def failing() -> Entry:
        calls.append("leader")
        leader_started.set()
        time.sleep(0.2)
        raise RuntimeError("model provider down")

    def computing() -> Entry:
        with lock:
            calls.append("waiter")
        return entry(b'"retry"')

    errors: list[BaseException] = []
    values: list[bytes] = []

    def lead() -> None:
        try:
            flight.get_or_compute(1, key("k"), failing)
        except RuntimeError as exc:
            errors.append(exc)

    def wait() -> None:
        leader_started.wait()
        values.append(flight.get_or_compute(1, key("k"), computing, wait_timeout_s=10).entry.value)

    threads = [threading.Thread(target=lead)] + [threading.Thread(target=wait) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 1
    assert values == [b'"retry"'] * 3
    assert calls[0] == "leader" and 1 <= calls.count("waiter") <= 3


def test_waiters_stop_waiting_after_the_timeout() -> None:
    flight = SingleFlight(MemoryBackend())
    release = threading.Event()
    leader_started = threading.Event()

    def slow() -> Entry:
        leader_started.set()
        release.wait(5)
        return entry(b'"slow"')

    leader = threading.Thread(target=lambda: flight.get_or_compute(1, key("k"), slow))
    leader.start()
    leader_started.wait()
    found = flight.get_or_compute(1, key("k"), lambda: entry(b'"own"'), wait_timeout_s=0.1)
    release.set()
    leader.join()
    assert (found.entry.value, found.hit) == (b'"own"', False)


@pytest.mark.parametrize("backend_kind", ["sqlite", "postgres", "redis"])
def test_leases_exclude_other_holders(cache_url: str) -> None:
    first, second = open_backend(cache_url, timeout_s=5), open_backend(cache_url, timeout_s=5)
    assert isinstance(first, LeaseBackend) and isinstance(second, LeaseBackend)
    try:
        assert first.acquire_lease(1, key("k"), 5_000)
        assert not second.acquire_lease(1, key("k"), 5_000)
        assert second.acquire_lease(2, key("k"), 5_000), "leases are per tenant"
        first.release_lease(1, key("k"))
        assert second.acquire_lease(1, key("k"), 5_000)
        second.release_lease(1, key("k"))
        second.release_lease(2, key("k"))
    finally:
        first.close()
        second.close()


def _flight_in_process(
    url: str, name: str, calls: str, start: threading.Barrier, results: multiprocessing.Queue
) -> None:
    backend = open_backend(url, timeout_s=5)

    def compute() -> Entry:
        with open(calls, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        return entry(b'"computed"')

    try:
        start.wait(60)
        found = SingleFlight(backend, poll_s=0.02).get_or_compute(
            1, key(name), compute, wait_timeout_s=30
        )
        results.put((found.entry.value, found.hit))
    finally:
        backend.close()


@pytest.mark.parametrize("backend_kind", ["postgres", "redis"])
def test_concurrent_misses_in_processes_compute_once(cache_url: str, tmp_path: Path) -> None:
    processes = 3
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    results = context.Queue()
    calls = tmp_path / "calls.txt"
    pool = [
        context.Process(
            target=_flight_in_process, args=(cache_url, "shared", str(calls), start, results)
        )
        for _ in range(processes)
    ]
    for process in pool:
        process.start()
    outcomes = [results.get(timeout=90) for _ in range(processes)]
    for process in pool:
        process.join(30)
        assert process.exitcode == 0
    assert len(calls.read_text().splitlines()) == 1
    assert {value for value, _ in outcomes} == {b'"computed"'}
    assert sorted(hit for _, hit in outcomes) == [False] + [True] * (processes - 1)


# -- faults --------------------------------------------------------------------------------


def test_a_redis_that_is_down_is_a_miss(caplog: pytest.LogCaptureFixture) -> None:
    cache = FaultTolerantBackend(open_backend("redis://127.0.0.1:1/0"), timeout_s=0.5)
    with caplog.at_level(logging.WARNING, logger="flowscope.cache"):
        assert cache.get(1, key("a")) is None
        cache.set(1, key("a"), entry())
        assert cache.get(1, key("a")) is None
        assert cache.invalidate(1, app_id="app", workflow_id="wf", all=True) == 0
        assert cache.stats(1, "app", "wf") == (0, 0)
        assert cache.cleanup() == 0
        assert cache.acquire_lease(1, key("a"), 1000), "no lease service: compute anyway"
        cache.release_lease(1, key("a"))
    assert cache.errors == 7  # release_lease had no lease to release: no call
    warnings = [r for r in caplog.records if r.name == "flowscope.cache"]
    assert len(warnings) == 1, "logged once, not per failure"
    assert "get" in warnings[0].getMessage()
    with pytest.raises(ValueError):  # a wrong call is a bug, not a fault
        cache.invalidate(1, app_id="app", workflow_id="wf")
    found = SingleFlight(cache).get_or_compute(1, key("a"), lambda: entry(b'"fresh"'))
    assert (found.entry.value, found.hit) == (b'"fresh"', False)
    cache.close()


def test_fault_tolerance_passes_results_through(backend: CacheBackend) -> None:
    cache = FaultTolerantBackend(backend, timeout_s=5)
    stored = entry()
    cache.set(1, key("a"), stored)
    assert cache.get(1, key("a")) == stored
    assert cache.stats(1, "app", "wf") == (1, stored.size)
    assert cache.invalidate(1, app_id="app", workflow_id="wf", key=key("a")) == 1
    assert cache.errors == 0


def test_a_call_past_the_deadline_is_abandoned(sqlite_cache_url: str) -> None:
    cache = FaultTolerantBackend(open_backend(sqlite_cache_url), timeout_s=0.05)
    engine = make_engine(sqlite_cache_url)
    stored = entry()
    # Another writer of this process holds SQLite's write turn: without the deadline the
    # store would wait for it, and this thread would wait for itself forever.
    with write_transaction(engine):
        cache.set(1, key("a"), stored)
        assert cache.errors == 1
    # The abandoned store finishes in the background once the turn is free.
    for _ in range(100):
        if cache.get(1, key("a")) == stored:
            break
        time.sleep(0.05)
    assert cache.get(1, key("a")) == stored
    cache.close()
    engine.dispose()
