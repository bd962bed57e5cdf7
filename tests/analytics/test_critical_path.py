"""Critical paths and slack: a worked example, and properties on random DAGs."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowscope.analytics.critical_path import Execution, Schedule

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
    path = Schedule(executions).critical_path()
    assert path.path == ("a", "c", "d")
    # With timing alone it would have waited for the LLM call as well.
    timing = Schedule([Execution(e.id, e.node_id, e.start_us, e.end_us) for e in executions])
    assert timing.critical_path().path == ("a", "b", "d")


def test_engine_time_after_the_last_node_is_kept() -> None:
    schedule = Schedule(example(), needs=NEEDS, run_start_us=-S, run_end_us=8 * S)
    path = schedule.critical_path()
    assert (path.run_start_us, path.run_end_us) == (-S, 8 * S)
    assert schedule.replay_end_us() == 8 * S


def test_instantaneous_executions_at_one_moment_do_not_wait_for_each_other() -> None:
    executions = [Execution("a", "x", 5, 5), Execution("b", "y", 5, 5), Execution("c", "z", 5, 9)]
    schedule = Schedule(executions)
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


@st.composite
def random_runs(draw: st.DrawFn) -> RandomRun:
    """A random DAG (edges from lower to higher index), run as an engine would run it."""
    count = draw(st.integers(1, 14))
    parents = [
        sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else [] for i in range(count)
    ]
    durations = [draw(st.integers(0, 50)) for _ in range(count)]
    gaps = [draw(st.integers(0, 3)) for _ in range(count)]
    ends: list[int] = []
    executions = []
    for i in range(count):
        start = max((ends[p] for p in parents[i]), default=0) + gaps[i]
        ends.append(start + durations[i])
        executions.append(Execution(f"e{i}", f"n{i}", start, ends[i]))
    return RandomRun(executions, {f"n{i}": [f"n{p}" for p in parents[i]] for i in range(count)})


def run_end(schedule: Schedule, index_of: dict[str, int], changes: dict[str, int]) -> int:
    return schedule.replay_end_us({index_of[k]: v for k, v in changes.items()})


@settings(max_examples=300)
@given(random_runs())
def test_properties_on_random_dags(run: RandomRun) -> None:
    for needs in (run.needs, None):
        schedule = Schedule(run.executions, needs=needs)
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
