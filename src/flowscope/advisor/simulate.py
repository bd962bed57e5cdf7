"""What-if replays over sampled runs: the run-time saving of a change, recomputed through each
run's critical path (a node with slack saves nothing), and a simulated result cache."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from statistics import median

from flowscope.advisor.evidence import SampleExecution, SampleRun


@dataclass(frozen=True, slots=True)
class Savings:
    """Per-run savings (ms) over the sampled runs the change touches or could touch."""

    per_run_ms: tuple[float, ...]

    @property
    def runs(self) -> int:
        return len(self.per_run_ms)

    @property
    def median_ms(self) -> float:
        return median(self.per_run_ms) if self.per_run_ms else 0.0

    @property
    def mean_ms(self) -> float:
        return sum(self.per_run_ms) / len(self.per_run_ms) if self.per_run_ms else 0.0


def replay_savings(
    runs: Iterable[SampleRun],
    needs: Mapping[str, frozenset[str]] | None,
    new_duration_us: Callable[[SampleExecution], int | None],
) -> Savings:
    """How much earlier each run would end if some top-level executions took
    `new_duration_us(execution)` (None: unchanged), replayed through the run's dependencies."""
    savings: list[float] = []
    for run in runs:
        schedule = run.schedule(needs)
        if schedule is None:
            continue
        by_id = run.by_id
        changed: dict[int, int] = {}
        for i, execution in enumerate(schedule.executions):
            new = new_duration_us(by_id[execution.id])
            if new is not None and new != execution.duration_us:
                changed[i] = max(0, new)
        observed = schedule.replay_end_us()
        savings.append((observed - schedule.replay_end_us(changed)) / 1000.0 if changed else 0.0)
    return Savings(tuple(savings))


def parallel_savings(
    runs: Iterable[SampleRun],
    needs: Mapping[str, frozenset[str]] | None,
    node_id: str,
    *off_node_ids: str,
) -> Savings:
    """How much earlier each run would end with `node_id` run beside `off_node_ids` instead
    of after them (runs where it and at least one of them ran)."""
    savings: list[float] = []
    for run in runs:
        schedule = run.schedule(needs)
        if schedule is None:
            continue
        ran = {e.node_id for e in schedule.executions}
        if node_id not in ran or ran.isdisjoint(off_node_ids):
            continue
        observed = schedule.replay_end_us()
        savings.append((observed - schedule.rewired_end_us(node_id, *off_node_ids)) / 1000.0)
    return Savings(tuple(savings))


@dataclass(frozen=True, slots=True)
class CacheReplay:
    """A node's executions replayed through a simulated cache."""

    executions: int  # with an input hash, in time order
    would_hit: frozenset[str]  # execution ids a cache would have served
    actual_hits: int

    @property
    def would_hit_rate(self) -> float:
        return len(self.would_hit) / self.executions if self.executions else 0.0


def simulate_cache(executions: Iterable[SampleExecution], ttl_seconds: int) -> CacheReplay:
    """Replay executions in start order through a cache keyed by input hash: an execution is
    a would-be hit when an earlier successful one with the same input ended within the TTL
    before it started. Failed executions store nothing; hits do not extend the entry."""
    ttl_us = ttl_seconds * 1_000_000
    stored: dict[str, int] = {}  # input hash -> when the entry was stored
    hits: set[str] = set()
    actual = 0
    ordered = sorted((e for e in executions if e.input_hash), key=lambda e: (e.start_us, e.id))
    for e in ordered:
        actual += e.cache_hit
        key = e.input_hash or ""
        at = stored.get(key)
        if at is not None and at <= e.start_us < at + ttl_us:
            hits.add(e.id)
            continue
        if e.status == "succeeded" and e.end_us is not None:
            stored[key] = e.end_us
    return CacheReplay(len(ordered), frozenset(hits), actual)
