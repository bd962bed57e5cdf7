"""Critical paths: the chain of node executions that determined when a run ended.

Model (see docs/critical-path.md for a worked example). Each top-level node execution `e`
(iteration and loop children count inside their container) has an observed start `s(e)`,
end `f(e)` and duration `d(e)`, and a set of dependencies `D(e)`, executions that had to end
before it could start:

- from the workflow graph, when known: the latest execution of each node it needs that ended
  by `s(e)`;
- else from its `predecessor_node_id`: the latest execution of that node that ended by `s(e)`
  (a predecessor that did not run in the same schedule counts as none given);
- else from timing alone: every execution that ended by `s(e)`. Observed times cannot tell
  scheduling overhead from waiting on another node, so slack from timing alone can differ
  either way from slack with the graph: give the graph when there is one.

Each execution keeps its observed scheduling gap `g(e) = s(e) - max f(D(e))` (from the run's
start when it has no dependency), so replaying the schedule with the observed durations
reproduces the observed times exactly, and replaying it with other durations answers "what if
this node were faster" by recomputing the critical path rather than by subtraction.

- Critical path: from the execution that ended last, step back to the dependency that ended
  last (the one that held it back), until an execution without dependencies.
- Slack of `e`: how much later `e` could end without delaying the run's end (backward pass).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Execution:
    """One finished top-level node execution, as the critical path needs it."""

    id: str
    node_id: str
    start_us: int
    end_us: int
    predecessor_node_id: str | None = None
    parent_id: str | None = None  # the container it ran inside (run_schedule.RunSchedule)

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us


@dataclass(frozen=True, slots=True)
class Step:
    """An execution's place in its run: its slack, and whether the run waited on it."""

    id: str
    node_id: str
    start_us: int
    end_us: int
    slack_us: int
    on_critical_path: bool


@dataclass(frozen=True, slots=True)
class CriticalPath:
    run_start_us: int
    run_end_us: int
    path: tuple[str, ...]  # execution ids, first to last
    steps: tuple[Step, ...]  # every execution, by start

    def time_on_path_us(self) -> dict[str, int]:
        """Critical-path time by node id: the durations of its executions on the path."""
        on_path = set(self.path)
        totals: dict[str, int] = {}
        for step in self.steps:
            if step.id in on_path:
                totals[step.node_id] = totals.get(step.node_id, 0) + step.end_us - step.start_us
        return totals


class Schedule:
    """A run's executions with their dependencies, ready to analyse and to replay.

    >>> s = Schedule([Execution("a", "start", 0, 10), Execution("b", "llm", 10, 50)])
    >>> s.critical_path().path
    ('a', 'b')
    """

    def __init__(
        self,
        executions: Iterable[Execution],
        *,
        needs: Mapping[str, Collection[str]] | None = None,
        run_start_us: int | None = None,
        run_end_us: int | None = None,
    ) -> None:
        """`needs` maps a node id to the node ids it depends on (from the workflow graph)."""
        self.executions = sorted(executions, key=lambda e: (e.start_us, e.end_us, e.id))
        if not self.executions:
            raise ValueError("a schedule needs at least one finished execution")
        for e in self.executions:
            if e.end_us < e.start_us:
                raise ValueError(f"execution {e.id!r} ends before it starts")
        first = min(e.start_us for e in self.executions)
        last = max(e.end_us for e in self.executions)
        self.run_start_us = first if run_start_us is None else min(run_start_us, first)
        # Time the engine spent after the last node (writing outputs, ...) stays as it was.
        self._tail_us = 0 if run_end_us is None else max(0, run_end_us - last)
        self.deps = self._dependencies(needs or {})
        self.gaps = [self._gap(i) for i in range(len(self.executions))]
        self._observed_end_us = last + self._tail_us

    def _dependencies(self, needs: Mapping[str, Collection[str]]) -> list[list[int]]:
        deps: list[list[int]] = []
        present = {e.node_id for e in self.executions}
        for i, e in enumerate(self.executions):
            # Only executions earlier in start order: two instantaneous ones at the same moment
            # would otherwise each wait for the other.
            ended = [j for j in range(i) if self.executions[j].end_us <= e.start_us]
            wanted = needs.get(e.node_id)
            # A predecessor that never ran here (Dify's iteration-start, which keeps no row)
            # says nothing: timing decides, as when none is given.
            if wanted is None and e.predecessor_node_id in present:
                wanted = (e.predecessor_node_id,)
            if wanted is None:
                deps.append(ended)
                continue
            latest: dict[str, int] = {}
            for j in ended:
                node_id = self.executions[j].node_id
                if node_id in wanted and (
                    node_id not in latest
                    or self.executions[j].end_us > self.executions[latest[node_id]].end_us
                ):
                    latest[node_id] = j
            deps.append(sorted(latest.values()))
        return deps

    def _gap(self, i: int) -> int:
        ready = max((self.executions[j].end_us for j in self.deps[i]), default=self.run_start_us)
        return self.executions[i].start_us - ready

    def replay(self, duration_us: Mapping[int, int] | None = None) -> list[tuple[int, int]]:
        """(start, end) of every execution with the observed gaps and the given durations."""
        durations = duration_us or {}
        times: list[tuple[int, int]] = []
        # Executions are sorted by observed start and depend only on ones that ended before
        # it, so every dependency is replayed before the executions that wait on it.
        for i, e in enumerate(self.executions):
            ready = max((times[j][1] for j in self.deps[i]), default=self.run_start_us)
            start = ready + self.gaps[i]
            times.append((start, start + durations.get(i, e.duration_us)))
        return times

    def replay_end_us(self, duration_us: Mapping[int, int] | None = None) -> int:
        """When the run would end with the given durations (by execution index)."""
        if not duration_us:
            return self._observed_end_us  # the replay reproduces the observed run exactly
        # Executions before the first changed one keep their observed times.
        first = min(duration_us)
        ends = [e.end_us for e in self.executions]
        deps, gaps, start_us = self.deps, self.gaps, self.run_start_us
        for i in range(first, len(ends)):
            needs = deps[i]
            if not needs:
                ready = start_us
            elif len(needs) == 1:
                ready = ends[needs[0]]
            else:
                ready = max([ends[j] for j in needs])
            start = ready + gaps[i]
            duration = duration_us.get(i)
            ends[i] = start + (self.executions[i].duration_us if duration is None else duration)
        return max(ends) + self._tail_us

    def critical_path(self) -> CriticalPath:
        ends = [e.end_us for e in self.executions]
        run_end = max(ends) + self._tail_us
        # Walk back from the execution that ended last (the latest starter among ties).
        current = max(range(len(ends)), key=lambda i: (ends[i], self.executions[i].start_us))
        path = [current]
        while self.deps[current]:
            current = max(self.deps[current], key=lambda j: (ends[j], self.executions[j].start_us))
            path.append(current)
        path.reverse()
        slack = self._slack(run_end - self._tail_us)
        on_path = set(path)
        steps = tuple(
            Step(e.id, e.node_id, e.start_us, e.end_us, slack[i], i in on_path)
            for i, e in enumerate(self.executions)
        )
        return CriticalPath(
            self.run_start_us, run_end, tuple(self.executions[i].id for i in path), steps
        )

    def _slack(self, last_end: int) -> list[int]:
        count = len(self.executions)
        latest_end = [last_end] * count
        # Backward pass in reverse start order: every execution's dependents come later.
        for i in range(count - 1, -1, -1):
            latest_start = latest_end[i] - self.executions[i].duration_us
            for j in self.deps[i]:
                latest_end[j] = min(latest_end[j], latest_start - self.gaps[i])
        return [latest_end[i] - e.end_us for i, e in enumerate(self.executions)]

    def saving_us(self, node_id: str, factor: float = 0.5) -> int:
        """How much earlier the run would end if every execution of `node_id` took `factor`
        of its time: replayed through the dependencies, not subtracted."""
        faster = {
            i: round(e.duration_us * factor)
            for i, e in enumerate(self.executions)
            if e.node_id == node_id
        }
        return self._observed_end_us - self.replay_end_us(faster)

    def rewired_end_us(self, node_id: str, off_node_id: str) -> int:
        """When the run would end had `node_id` not waited for `off_node_id`, but for what
        `off_node_id` itself waited for, the two running side by side; whatever waited for
        `node_id` then waits for both (so nothing after them starts earlier than it could).
        Observed gaps and durations are kept."""
        executions = self.executions
        deps = [list(d) for d in self.deps]
        moved: set[int] = set()
        for i, e in enumerate(executions):
            if e.node_id != node_id:
                continue
            new: set[int] = set()
            for j in deps[i]:
                if executions[j].node_id == off_node_id:
                    new.update(self.deps[j])
                    moved.add(j)
                else:
                    new.add(j)
            deps[i] = sorted(new)
        if not moved:
            return self._observed_end_us
        for i, e in enumerate(executions):
            if e.node_id != node_id and any(executions[j].node_id == node_id for j in deps[i]):
                deps[i] = sorted(set(deps[i]) | {j for j in moved if j < i})
        ends: list[int] = []
        for i, e in enumerate(executions):
            ready = max((ends[j] for j in deps[i]), default=self.run_start_us)
            ends.append(ready + self.gaps[i] + e.duration_us)
        return max(ends) + self._tail_us
