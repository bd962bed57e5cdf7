"""Critical paths: the chain of node executions that determined when a run ended.

Model (see docs/critical-path.md for a worked example). Each top-level node execution `e`
(iteration and loop children count inside their container) has an observed start `s(e)`,
end `f(e)` and duration `d(e)`, and a set of dependencies `D(e)`, executions that had to end
before it could start:

- from the workflow graph, when known: the latest execution of each node it needs that ended
  by `s(e)`;
- else from its `predecessor_node_id`: the latest execution of that node that ended by `s(e)`
  (a predecessor that did not run in the same schedule counts as none given);
- else from timing alone: every execution that ended by `s(e)`, less those another of them
  waited for (they add nothing: what waited for them ended after them), so a run of 20,000
  executions one after another costs 20,000 steps, not 200 million. Observed times cannot
  tell scheduling overhead from waiting on another node, so slack from timing alone can
  differ either way from slack with the graph: give the graph when there is one.

"Ended by `s(e)`" allows a tolerance `tol` (JITTER_TOLERANCE_US, 1 ms by default): a
predecessor whose recorded end is up to `tol` after the recorded start of what waited for it
still counts, unless that is more than half of its own duration (a short execution that
started beside another is not something the other waited for). Engines' clocks round to
the millisecond or the second, and threads and hosts disagree by a little: without it a
dependency vanishes whenever rounding puts its end a microsecond late, and the critical path
jumps to another branch.

Each execution keeps its observed scheduling gap `g(e) = s(e) - max f(D(e))` (from the run's
start when it has no dependency; down to `-tol` when a dependency's end was recorded late),
so replaying the schedule with the observed durations reproduces the observed times exactly,
and replaying it with other durations answers "what if this node were faster" by
recomputing the critical path rather than by subtraction.

- Critical path: from the execution that ended last, step back to the dependency that ended
  last (the one that held it back), until an execution without dependencies. Ends within
  `tol` of each other are a tie, settled by node id and then execution id, so jitter within
  the tolerance never moves the path.
- Slack of `e`: how much later `e` could end without delaying the run's end (backward pass).
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

JITTER_TOLERANCE_US = 1_000
"""How far a recorded end may fall after the recorded start of what waited for it (1 ms:
microsecond rounding, millisecond timestamps, clocks of threads that disagree a little)."""
_tolerance_us = [JITTER_TOLERANCE_US]


def set_default_tolerance_us(value: int) -> None:
    """The tolerance of schedules built without one (FLOWSCOPE_CRITICAL_PATH_TOLERANCE_MS,
    applied by the server and the CLI at start)."""
    if value < 0:
        raise ValueError("the tolerance cannot be negative")
    _tolerance_us[0] = value


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
        tolerance_us: int | None = None,
    ) -> None:
        """`needs` maps a node id to the node ids it depends on (from the workflow graph);
        `tolerance_us` defaults to the process's (set_default_tolerance_us)."""
        self.tolerance_us = _tolerance_us[0] if tolerance_us is None else tolerance_us
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
        self._ends = [e.end_us for e in self.executions]
        self._observed_end_us = last + self._tail_us

    def _dependencies(self, needs: Mapping[str, Collection[str]]) -> list[list[int]]:
        """Each execution's dependencies (indexes of earlier ones), in one pass in start
        order. Executions that ended by the current start (within the tolerance) join
        `ended`; `frontier` keeps those of them no other ended one waited for."""
        executions = self.executions
        tolerance = self.tolerance_us
        present = {e.node_id for e in executions}
        wanted_of: list[Collection[str] | None] = []
        for e in executions:
            wanted = needs.get(e.node_id)
            # A predecessor that never ran here (Dify's iteration-start, which keeps no row)
            # says nothing: timing decides, as when none is given.
            if wanted is None and e.predecessor_node_id in present:
                wanted = (e.predecessor_node_id,)
            wanted_of.append(wanted)
        # When each counts as ended: its recorded end, less the tolerance, but never less than
        # half its duration before its end (a short execution that started beside another is
        # not something the other waited for).
        ready_at = [e.end_us - min(tolerance, e.duration_us // 2) for e in executions]
        deps: list[list[int]] = []
        pending: list[tuple[int, int]] = []  # (ready_at, index) of executions not ended yet
        frontier: list[int] = []
        latest_of_node: dict[str, int] = {}  # node id -> its ended execution that ended last
        # Only an execution that depends on timing alone waits for every ended one: it is the
        # one that may stand in for those it waited for.
        newest = -1  # the ended timing-only execution that started last
        for i, e in enumerate(executions):
            while pending and pending[0][0] <= e.start_us:
                _, j = heapq.heappop(pending)
                ended = executions[j]
                # Some ended execution waited for j (started after it ended): j adds nothing.
                if not (newest > j and ready_at[j] <= executions[newest].start_us):
                    if wanted_of[j] is None:
                        frontier = [
                            k for k in frontier if not (k < j and ready_at[k] <= ended.start_us)
                        ]
                    frontier.append(j)
                if wanted_of[j] is None:
                    newest = max(newest, j)
                seen = latest_of_node.get(ended.node_id)
                if seen is None or ended.end_us > executions[seen].end_us:
                    latest_of_node[ended.node_id] = j
            wanted = wanted_of[i]
            if wanted is None:
                deps.append(sorted(frontier))
            else:
                deps.append(sorted(latest_of_node[n] for n in wanted if n in latest_of_node))
            heapq.heappush(pending, (ready_at[i], i))
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
        ends = list(self._ends)
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
        ends = self._ends
        run_end = max(ends) + self._tail_us
        # Walk back from the execution that ended last, through what held each one back.
        current = self._last_of(range(len(ends)))
        path = [current]
        while self.deps[current]:
            current = self._last_of(self.deps[current])
            path.append(current)
        path.reverse()
        slack = self._slack(max(ends))
        on_path = set(path)
        steps = tuple(
            Step(e.id, e.node_id, e.start_us, e.end_us, slack[i], i in on_path)
            for i, e in enumerate(self.executions)
        )
        return CriticalPath(
            self.run_start_us, run_end, tuple(self.executions[i].id for i in path), steps
        )

    def _last_of(self, indexes: Iterable[int]) -> int:
        """The execution among these that ended last; ends within the tolerance of the last
        are a tie, settled by node id, then the latest start (stable under jitter; the latest
        starter when there is no tolerance)."""
        ends = self._ends
        candidates = list(indexes)
        last = max(ends[i] for i in candidates)
        tied = [i for i in candidates if ends[i] >= last - self.tolerance_us]
        if len(tied) == 1:
            return tied[0]
        if self.tolerance_us == 0:
            return max(tied, key=lambda i: self.executions[i].start_us)
        # Among one node's executions (a loop's rounds), the one that started last.
        return min(
            tied,
            key=lambda i: (
                self.executions[i].node_id,
                -self.executions[i].start_us,
                self.executions[i].id,
            ),
        )

    def _slack(self, last_end: int) -> list[int]:
        count = len(self.executions)
        latest_end = [last_end] * count
        # Backward pass in reverse start order: every execution's dependents come later.
        for i in range(count - 1, -1, -1):
            latest_start = latest_end[i] - self.executions[i].duration_us
            for j in self.deps[i]:
                latest_end[j] = min(latest_end[j], latest_start - self.gaps[i])
        return [latest_end[i] - end for i, end in enumerate(self._ends)]

    def saving_us(self, node_id: str, factor: float = 0.5) -> int:
        """How much earlier the run would end if every execution of `node_id` took `factor`
        of its time: replayed through the dependencies, not subtracted."""
        faster = {
            i: round(e.duration_us * factor)
            for i, e in enumerate(self.executions)
            if e.node_id == node_id
        }
        return self._observed_end_us - self.replay_end_us(faster)

    def rewired_end_us(self, node_id: str, *off_node_ids: str) -> int:
        """When the run would end had `node_id` not waited for `off_node_ids`, but for what
        they themselves waited for (through one another too), running side by side with
        them; whatever waited for `node_id` then waits for them all (so nothing after them
        starts earlier than it could). Observed gaps and durations are kept."""
        executions = self.executions
        off = set(off_node_ids)
        deps = [list(d) for d in self.deps]
        moved: set[int] = set()
        for i, e in enumerate(executions):
            if e.node_id != node_id:
                continue
            new: set[int] = set()
            stack = list(deps[i])
            while stack:
                j = stack.pop()
                if executions[j].node_id not in off:
                    new.add(j)
                elif j not in moved:
                    moved.add(j)
                    stack.extend(self.deps[j])
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
