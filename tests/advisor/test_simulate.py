"""What-if replays: the simulated cache, savings through critical paths, rewired schedules."""

from __future__ import annotations

import pytest

from flowscope.advisor.evidence import SampleRun
from flowscope.advisor.simulate import parallel_savings, replay_savings, simulate_cache
from flowscope.analytics.critical_path import Execution, Schedule
from tests.advisor.builders import chain_run, execution

S = 1000.0  # ms


@pytest.mark.parametrize(
    ("starts_s", "statuses", "ttl_s", "hits"),
    [
        ((0, 10, 20), ("succeeded",) * 3, 60, {1, 2}),
        ((0, 61, 62), ("succeeded",) * 3, 60, {2}),  # expired at 60.5 s, stored again at 61
        ((0, 10, 20), ("failed", "succeeded", "succeeded"), 60, {2}),  # failures store nothing
        ((0, 0.2), ("succeeded",) * 2, 60, set()),  # the first had not finished yet
    ],
)
def test_simulated_cache(
    starts_s: tuple[float, ...], statuses: tuple[str, ...], ttl_s: int, hits: set[int]
) -> None:
    executions = [
        execution("r", "n", s * S, s * S + 500, input_hash="same", status=status)
        for s, status in zip(starts_s, statuses, strict=True)
    ]
    replay = simulate_cache(executions, ttl_s)
    assert replay.would_hit == {executions[i].id for i in hits}
    assert replay.executions == len(executions)


def test_inputs_are_cached_separately() -> None:
    executions = [
        execution("r", "n", i * S, i * S + 10, input_hash=h)
        for i, h in enumerate(["a", "b", "a", "b", "c"])
    ]
    assert simulate_cache(executions, 3600).would_hit == {executions[2].id, executions[3].id}


def _parallel_run(i: int) -> SampleRun:
    """a (1 s) then b (0.2 s) beside c (2 s): the run ends with c."""
    start = i * 60_000.0
    executions = [
        execution(f"r{i}", "a", start, start + 1000),
        execution(f"r{i}", "b", start + 1000, start + 1200),
        execution(f"r{i}", "c", start + 1000, start + 3000),
    ]
    return SampleRun(f"r{i}", "succeeded", round(start * S), round((start + 3000) * S), executions)


def test_saving_goes_through_the_critical_path() -> None:
    runs = [_parallel_run(i) for i in range(3)]
    needs = {"a": frozenset(), "b": frozenset({"a"}), "c": frozenset({"a"})}
    # b has 1.8 s of slack: making it instant saves nothing; a is on the path: all of it.
    assert replay_savings(runs, needs, lambda e: 0 if e.node_id == "b" else None).median_ms == 0
    assert replay_savings(runs, needs, lambda e: 0 if e.node_id == "a" else None).median_ms == 1000
    # c instant: the run then ends with b, 1.8 s earlier.
    assert replay_savings(runs, needs, lambda e: 0 if e.node_id == "c" else None).median_ms == 1800


def test_parallel_saving_is_the_shorter_of_the_two() -> None:
    runs = [chain_run(i, [("a", 1000), ("b", 700), ("c", 100)], gap_ms=0) for i in range(5)]
    needs = {"a": frozenset(), "b": frozenset({"a"}), "c": frozenset({"b"})}
    savings = parallel_savings(runs, needs, "b", "a")
    assert savings.per_run_ms == (700.0,) * 5


def test_rewired_schedule_keeps_later_nodes_after_both() -> None:
    # a 1 s, b 3 s after a, c 0.1 s after b. b beside a: c must still wait for a and b, so
    # the run takes 3.1 s (not less, had c stopped waiting for a).
    s = Schedule(
        [Execution("a", "a", 0, 1_000_000), Execution("b", "b", 1_000_000, 4_000_000),
         Execution("c", "c", 4_000_000, 4_100_000)],
        needs={"b": {"a"}, "c": {"b"}},
    )  # fmt: skip
    assert s.rewired_end_us("b", "a") == 3_100_000
    # a short first node: c then waits for b alone, which ends at 3 s.
    assert s.rewired_end_us("a", "b") == 4_100_000  # a does not wait for b: nothing moves
    assert s.rewired_end_us("c", "a") == 4_100_000  # c never waited for a directly


def test_rewired_beside_several() -> None:
    # a1 (1 s) and a2 (0.6 s) side by side, b (0.8 s) after both, c after b. b beside both:
    # it starts at 0 and c waits for a1, a2 and b: 1 s. Beside a1 alone, b still waits for
    # a2 (0.6 s): c at 1.4 s. Beside a chain of a1 then a2 (drawn a1 -> a2 -> b), b waits
    # for what a1 waited for: nothing.
    s = Schedule(
        [Execution("a1", "a1", 0, 1_000_000), Execution("a2", "a2", 0, 600_000),
         Execution("b", "b", 1_000_000, 1_800_000), Execution("c", "c", 1_800_000, 1_900_000)],
        needs={"b": {"a1", "a2"}, "c": {"b"}},
    )  # fmt: skip
    assert s.rewired_end_us("b", "a1", "a2") == 1_100_000
    assert s.rewired_end_us("b", "a1") == 1_500_000
    chained = Schedule(
        [Execution("a1", "a1", 0, 1_000_000), Execution("a2", "a2", 1_000_000, 1_600_000),
         Execution("b", "b", 1_600_000, 2_400_000)],
        needs={"a2": {"a1"}, "b": {"a2", "a1"}},
    )  # fmt: skip
    assert chained.rewired_end_us("b", "a1", "a2") == 1_600_000
