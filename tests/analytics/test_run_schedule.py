"""Critical paths through containers: worked examples, and properties on random trees."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from flowscope.analytics.critical_path import Schedule
from flowscope.analytics.run_schedule import Execution, RunSchedule

MS = 1000


def langgraph_run() -> list[Execution]:
    # plan (1 s) -> [draft_a (2 s) | draft_b (5 s)] -> merge (1 s), every node a chain with
    # one LLM call inside; the chains add 50 ms each around their call.
    def node(name: str, start: int, call_ms: int) -> list[Execution]:
        return [
            Execution(name, name, start, start + call_ms + 50 * MS),
            Execution(
                f"{name}.llm",
                f"{name}/llm",
                start + 25 * MS,
                start + 25 * MS + call_ms,
                parent_id=name,
            ),
        ]

    return [
        *node("plan", 0, 1000 * MS),
        *node("draft_a", 1050 * MS, 2000 * MS),
        *node("draft_b", 1050 * MS, 5000 * MS),
        *node("merge", 6100 * MS, 1000 * MS),
    ]


def test_the_path_names_the_calls_inside_the_chains() -> None:
    path = RunSchedule(langgraph_run()).critical_path()
    assert path.path == ("plan", "plan.llm", "draft_b", "draft_b.llm", "merge", "merge.llm")
    on_path = path.time_on_path_us()
    # The slow call, not its chain, holds the run up; the chain keeps only its own 50 ms.
    assert on_path["draft_b/llm"] == 5000 * MS
    assert on_path["draft_b"] == 50 * MS
    assert "draft_a/llm" not in on_path and "draft_a" not in on_path
    # Time on the path is the run's span, once.
    assert sum(on_path.values()) == 7150 * MS


def test_slack_of_a_child_adds_its_containers_slack() -> None:
    steps = {s.step.id: s for s in RunSchedule(langgraph_run()).critical_path().steps}
    assert steps["draft_a"].step.slack_us == 3000 * MS
    assert steps["draft_a.llm"].step.slack_us == 3000 * MS  # filled its chain: no own slack
    assert steps["draft_a.llm"].parent_id == "draft_a" and steps["draft_a.llm"].depth == 1
    assert not steps["draft_a.llm"].step.on_critical_path
    assert steps["draft_b.llm"].step.on_critical_path


def test_savings_are_replayed_through_the_container() -> None:
    schedule = RunSchedule(langgraph_run())
    # Halving the slow call shortens its chain by 2.5 s, and the run by 2.5 s.
    assert schedule.saving_us("draft_b/llm") == 2500 * MS
    # Halving draft_a's call saves nothing: it had 3 s of slack.
    assert schedule.saving_us("draft_a/llm") == 0
    # A chain's own work is its 50 ms around the call: halving it saves 25 ms.
    assert schedule.saving_us("draft_b") == 25 * MS


def test_an_iteration_runs_its_items_in_turn() -> None:
    executions = [
        Execution("start", "start", 0, 10 * MS),
        Execution("it", "iteration", 10 * MS, 400 * MS, predecessor_node_id="start"),
        Execution("i1", "summarise", 20 * MS, 120 * MS, parent_id="it"),
        Execution("i2", "summarise", 130 * MS, 390 * MS, parent_id="it"),
        Execution("end", "end", 400 * MS, 410 * MS, predecessor_node_id="iteration"),
    ]
    path = RunSchedule(executions).critical_path()
    assert path.path == ("start", "it", "i1", "i2", "end")
    assert path.time_on_path_us() == {
        "start": 10 * MS,
        "iteration": 30 * MS,
        "summarise": 360 * MS,
        "end": 10 * MS,
    }


def test_a_child_past_its_containers_end_is_clipped() -> None:
    # Clock skew between threads: the child ends 2 ms after its container.
    executions = [
        Execution("c", "chain", 0, 100 * MS),
        Execution("x", "llm", 10 * MS, 102 * MS, parent_id="c"),
    ]
    path = RunSchedule(executions, run_start_us=0, run_end_us=100 * MS).critical_path()
    assert sum(path.time_on_path_us().values()) <= 100 * MS
    assert path.time_on_path_us()["llm"] == 90 * MS


def test_a_parent_cycle_or_a_missing_parent_does_not_loop() -> None:
    executions = [
        Execution("a", "a", 0, 10, parent_id="b"),
        Execution("b", "b", 0, 10, parent_id="a"),
        Execution("c", "c", 10, 20, parent_id="gone"),  # its parent never arrived: top level
    ]
    path = RunSchedule(executions).critical_path()
    assert path.path == ("c",)


@dataclass(frozen=True)
class RandomTree:
    executions: list[Execution]
    run_end: int


@st.composite
def random_trees(draw: st.DrawFn) -> RandomTree:
    """Sequential and parallel children, nested up to three levels, as an engine runs them."""
    executions: list[Execution] = []
    counter = itertools.count()

    def block(parent: str | None, start: int, depth: int) -> int:
        """Children of `parent` from `start`; returns when the last one ended."""
        clock = start
        for _ in range(draw(st.integers(1, 3))):
            width = draw(st.integers(1, 3))  # parallel siblings
            begin = clock + draw(st.integers(0, 3))
            ends = []
            for _ in range(width):
                name = f"e{next(counter)}"
                node_id = f"n{draw(st.integers(0, 6))}"
                if depth < 3 and draw(st.booleans()):
                    inner_start = begin + draw(st.integers(0, 2))
                    inner_end = block(name, inner_start, depth + 1)
                    end = inner_end + draw(st.integers(0, 2))
                else:
                    end = begin + draw(st.integers(0, 40))
                executions.append(Execution(name, node_id, begin, end, parent_id=parent))
                ends.append(end)
            clock = max(ends)
        return clock

    end = block(None, 0, 0)
    return RandomTree(executions, end + draw(st.integers(0, 5)))


@settings(max_examples=300, deadline=None)
@given(random_trees())
def test_properties_on_random_trees(tree: RandomTree) -> None:
    # Microsecond times, read strictly (the tolerance is for real, jittered clocks).
    schedule = RunSchedule(tree.executions, run_start_us=0, run_end_us=tree.run_end, tolerance_us=0)
    path = schedule.critical_path()
    by_id = {e.id: e for e in tree.executions}
    # Shares of a run never add up to more than the run.
    assert sum(path.time_on_path_us().values()) <= tree.run_end
    assert all(us >= 0 for us in path.time_on_path_us().values())
    # Every execution is a step once; a container comes before its children on the path.
    assert sorted(s.step.id for s in path.steps) == sorted(by_id)
    position = {i: n for n, i in enumerate(path.path)}
    for execution_id in path.path:
        parent = by_id[execution_id].parent_id
        if parent is not None:
            assert parent in position and position[parent] < position[execution_id]
    # Leaves on the path, one after another, never overlap.
    leaves = [by_id[i] for i in path.path if i not in schedule.inner]
    assert all(a.end_us <= b.start_us for a, b in itertools.pairwise(leaves))
    # Slack is never negative, and zero on the path.
    for item in path.steps:
        assert item.step.slack_us >= 0
        if item.step.on_critical_path:
            assert item.step.slack_us == 0
    # A saving never exceeds the node's own time on the path plus its off-path share.
    for node_id in {e.node_id for e in tree.executions}:
        saving = schedule.saving_us(node_id)
        assert (
            0 <= saving <= sum(by_id[i].duration_us for i in by_id if by_id[i].node_id == node_id)
        )


@settings(max_examples=200, deadline=None)
@given(random_trees())
def test_a_flat_run_gives_what_the_flat_schedule_gives(tree: RandomTree) -> None:
    flat = [Execution(e.id, e.node_id, e.start_us, e.end_us) for e in tree.executions]
    nested = RunSchedule(flat, run_start_us=0, run_end_us=tree.run_end, tolerance_us=0)
    plain = Schedule(flat, run_start_us=0, run_end_us=tree.run_end, tolerance_us=0)
    assert nested.critical_path().path == plain.critical_path().path
    assert nested.critical_path().time_on_path_us() == plain.critical_path().time_on_path_us()
    for node_id in {e.node_id for e in flat}:
        assert nested.saving_us(node_id) == plain.saving_us(node_id)
