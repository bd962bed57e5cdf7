"""Critical paths and slack: a worked example, and properties on random DAGs."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowscope.analytics.critical_path import JITTER_TOLERANCE_US, Execution, Schedule

S = 1_000_000  # one second in microseconds


def example() -> list[Execution]:
    # start -> slow (5.9 s) ----------------------> end
    #       -> fetch (2.9 s) -> summarize (4.0 s) ->
    return [
        Execution("e1", "start", 0, S // 10),
        Execution("e2", "slow", S // 10, 6 * S),
        Execution("e3", "fetch", S // 10, 3 * S),
        Execution("e4", "summarize", 3 * S, 7 * S),
        Execution("e5", "end", 7 * S, 7 * S + S // 5),
    ]


NEEDS = {
    "slow": ["start"],
    "fetch": ["start"],
    "summarize": ["fetch"],
    "end": ["slow", "summarize"],
}


@pytest.mark.parametrize("needs", [NEEDS, None], ids=["graph", "timing alone"])
def test_the_slowest_node_is_not_on_the_critical_path(needs: dict[str, list[str]] | None) -> None:
    schedule = Schedule(example(), needs=needs)
    path = schedule.critical_path()
    assert path.path == ("e1", "e3", "e4", "e5")
    slack = {step.node_id: step.slack_us for step in path.steps}
    assert slack == {"start": 0, "slow": S, "fetch": 0, "summarize": 0, "end": 0}
    assert path.run_end_us == 7 * S + S // 5
    assert path.time_on_path_us()["summarize"] == 4 * S
    assert "slow" not in path.time_on_path_us()
    # Halving `summarize` saves 1 s, not 2 s: then the run waits for `slow`.
    assert schedule.saving_us("summarize") == S
    assert schedule.saving_us("slow") == 0
    assert schedule.saving_us("fetch") == round(1.45 * S) - round(0.45 * S)


def test_predecessor_ids_stand_in_for_the_graph() -> None:
    executions = [
        Execution("a", "start", 0, 10),
        Execution("b", "llm", 10, 100, predecessor_node_id="start"),
        Execution("c", "code", 10, 20, predecessor_node_id="start"),
        # Started after both, but reported to wait only for `code`.
        Execution("d", "tool", 150, 160, predecessor_node_id="code"),
    ]
    # Microsecond times, read strictly (within the default 1 ms tolerance every end is a tie).
    path = Schedule(executions, tolerance_us=0).critical_path()
    assert path.path == ("a", "c", "d")
    # With timing alone it would have waited for the LLM call as well.
    plain = [Execution(e.id, e.node_id, e.start_us, e.end_us) for e in executions]
    assert Schedule(plain, tolerance_us=0).critical_path().path == ("a", "b", "d")


def test_engine_time_after_the_last_node_is_kept() -> None:
    schedule = Schedule(example(), needs=NEEDS, run_start_us=-S, run_end_us=8 * S)
    path = schedule.critical_path()
    assert (path.run_start_us, path.run_end_us) == (-S, 8 * S)
    assert schedule.replay_end_us() == 8 * S


def test_instantaneous_executions_at_one_moment_do_not_wait_for_each_other() -> None:
    executions = [Execution("a", "x", 5, 5), Execution("b", "y", 5, 5), Execution("c", "z", 5, 9)]
    schedule = Schedule(executions, tolerance_us=0)
    assert schedule.replay() == [(5, 5), (5, 5), (5, 9)]
    assert schedule.critical_path().path[-1] == "c"


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Schedule([])
    with pytest.raises(ValueError, match="ends before it starts"):
        Schedule([Execution("a", "x", 10, 5)])


@dataclass(frozen=True)
class RandomRun:
    executions: list[Execution]
    needs: dict[str, list[str]]


def dag_run(
    draw: st.DrawFn, most: int, durations: st.SearchStrategy[int], gaps: st.SearchStrategy[int]
) -> RandomRun:
    """A random DAG (edges from lower to higher index), run as an engine would run it."""
    count = draw(st.integers(1, most))
    parents = [
        sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else [] for i in range(count)
    ]
    ends: list[int] = []
    executions = []
    for i in range(count):
        start = max((ends[p] for p in parents[i]), default=0) + draw(gaps)
        ends.append(start + draw(durations))
        executions.append(Execution(f"e{i}", f"n{i}", start, ends[i]))
    return RandomRun(executions, {f"n{i}": [f"n{p}" for p in parents[i]] for i in range(count)})


@st.composite
def random_runs(draw: st.DrawFn) -> RandomRun:
    return dag_run(draw, 14, st.integers(0, 50), st.integers(0, 3))


def run_end(schedule: Schedule, index_of: dict[str, int], changes: dict[str, int]) -> int:
    return schedule.replay_end_us({index_of[k]: v for k, v in changes.items()})


@settings(max_examples=300)
@given(random_runs())
def test_properties_on_random_dags(run: RandomRun) -> None:
    for needs in (run.needs, None):
        # Microsecond times: read strictly (the tolerance is for real, jittered clocks).
        schedule = Schedule(run.executions, needs=needs, tolerance_us=0)
        path = schedule.critical_path()
        observed_end = max(e.end_us for e in run.executions)
        # Replaying with the observed durations reproduces the observed times.
        by_id = {e.id: e for e in run.executions}
        assert schedule.replay() == [(e.start_us, e.end_us) for e in schedule.executions]
        assert path.run_end_us == observed_end
        # The path is a chain of waits that covers the whole run.
        chain = [by_id[i] for i in path.path]
        assert chain[-1].end_us == observed_end
        assert all(a.end_us <= b.start_us for a, b in itertools.pairwise(chain))
        steps = {s.id: s for s in path.steps}
        assert all(steps[i].slack_us == 0 for i in path.path)
        index_of = {e.id: i for i, e in enumerate(schedule.executions)}
        for e in run.executions:
            slack = steps[e.id].slack_us
            assert slack >= 0
            # Taking `slack` longer does not delay the run; one microsecond more does.
            longer = {e.id: e.duration_us + slack}
            assert run_end(schedule, index_of, longer) == observed_end
            longer = {e.id: e.duration_us + slack + 1}
            assert run_end(schedule, index_of, longer) == observed_end + 1
            # The fast replay of the end (from the first change on) agrees with a full replay.
            shorter = {index_of[e.id]: e.duration_us // 2}
            full = max(end for _, end in schedule.replay(shorter))
            assert schedule.replay_end_us(shorter) == full


def test_a_predecessor_that_did_not_run_leaves_it_to_timing() -> None:
    # Dify's iteration items name the iteration-start node, which keeps no row of its own.
    executions = [
        Execution("i0", "summarise", 0, 100, predecessor_node_id="iteration-start"),
        Execution("i1", "summarise", 110, 300, predecessor_node_id="iteration-start"),
    ]
    assert Schedule(executions).critical_path().path == ("i0", "i1")


MS = 1_000


@st.composite
def jittered_runs(draw: st.DrawFn) -> tuple[RandomRun, list[Execution]]:
    """A random DAG run on a 10 ms grid (durations of 20 ms and more, ends and starts either
    equal or 10 ms apart), and the same run with every timestamp moved by up to half the
    tolerance either way: what millisecond rounding and skewed clocks do to real runs."""
    on_grid = st.integers(2, 30).map(lambda n: 10 * MS * n)
    run = dag_run(draw, 12, on_grid, st.integers(0, 2).map(lambda n: 10 * MS * n))
    half = JITTER_TOLERANCE_US // 2
    moves = st.integers(-half, half)
    jittered = [
        Execution(e.id, e.node_id, e.start_us + draw(moves), e.end_us + draw(moves))
        for e in run.executions
    ]
    return run, jittered


@settings(max_examples=300)
@given(jittered_runs())
def test_jitter_within_the_tolerance_never_moves_the_critical_path(
    case: tuple[RandomRun, list[Execution]],
) -> None:
    """Issue 15: a start 1 µs before its predecessor's end dropped the dependency and moved
    the path to another branch."""
    run, jittered = case
    for needs in (run.needs, None):
        exact = Schedule(run.executions, needs=needs).critical_path().path
        moved = Schedule(jittered, needs=needs, run_start_us=0).critical_path().path
        assert moved == exact


def test_without_tolerance_a_late_end_drops_the_dependency() -> None:
    """What the tolerance is for: the same run read strictly loses its dependency."""
    run = [
        Execution("a", "first", 0, 100 * MS + 1),  # ends 1 µs after `b` starts
        Execution("b", "second", 100 * MS, 200 * MS),
        Execution("p", "parallel", 0, 150 * MS),
    ]
    assert Schedule(run).critical_path().path == ("a", "b")
    assert Schedule(run, tolerance_us=0).critical_path().path == ("b",)


def test_a_long_chain_keeps_one_dependency_per_execution() -> None:
    """Timing alone used to list every earlier execution: 20,000 one after another made 200
    million dependencies (D5). Those a later one waited for are left out."""
    chain = [Execution(f"e{i}", f"n{i}", 10 * i * MS, 10 * (i + 1) * MS) for i in range(20_000)]
    schedule = Schedule(chain)
    assert sum(len(d) for d in schedule.deps) == 19_999
    assert schedule.critical_path().path[-1] == "e19999"
    assert schedule.saving_us("n5") == 5 * MS
