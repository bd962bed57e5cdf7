"""A run's critical path through its containers.

A container (a Dify iteration or loop, a LangChain chain, an agent, a LangGraph node) is a
node execution with children. At the top level, and inside every container, the children
form their own schedule (`Schedule`, analytics/critical_path.py) bounded by the container's
time. The critical path steps into a container that is on it and follows the children that
held it back, so it names the slowest work inside, not the container.

A container's own time on the path is its *self time*: its duration less the durations of
its children on its inner path (the engine's overhead around them). Time on the path thus
never counts a moment twice: the top-level path is a chain of executions one after another,
and each container's inner path lies within it, so the times on the path add up to at most
the run's duration.

>>> s = RunSchedule([
...     Execution("it", "iteration", 0, 100),
...     Execution("a", "llm", 5, 45, parent_id="it"),
...     Execution("b", "llm", 50, 95, parent_id="it"),
... ])
>>> path = s.critical_path()
>>> path.path
('it', 'a', 'b')
>>> path.time_on_path_us()
{'iteration': 15, 'llm': 85}
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from flowscope.analytics.critical_path import (
    CriticalPath,
    Execution,
    Schedule,
    Step,
)

__all__ = ["Execution", "PathStep", "RunPath", "RunSchedule"]


@dataclass(frozen=True, slots=True)
class PathStep:
    """An execution's place in its run: `Step` with its container (None at the top level)
    and, for a container, its self time on the path."""

    step: Step
    parent_id: str | None
    depth: int
    on_path_us: int  # time it holds the run up: its duration, or a container's self time


@dataclass(frozen=True, slots=True)
class RunPath:
    run_start_us: int
    run_end_us: int
    path: tuple[str, ...]  # execution ids, a container before the children it waited for
    steps: tuple[PathStep, ...]  # every execution: top level by start, children after theirs

    def time_on_path_us(self) -> dict[str, int]:
        """Critical-path time by node id: leaves' durations, containers' self time."""
        totals: dict[str, int] = {}
        for item in self.steps:
            if item.step.on_critical_path:
                node_id = item.step.node_id
                totals[node_id] = totals.get(node_id, 0) + item.on_path_us
        return totals


class RunSchedule:
    """The top level's schedule, and one schedule per container for its children.

    Executions whose parent is not among them count at the top level. Children are clipped
    to their container's time: clock skew between an engine's threads or hosts must not let
    a child hold its container up beyond the container's own end.
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
        every = list(executions)
        ids = {e.id for e in every}
        by_parent: dict[str | None, list[Execution]] = {}
        for e in every:
            parent = e.parent_id if e.parent_id in ids and e.parent_id != e.id else None
            by_parent.setdefault(parent, []).append(e)
        self.top = Schedule(
            by_parent.get(None, ()),
            needs=needs,
            run_start_us=run_start_us,
            run_end_us=run_end_us,
            tolerance_us=tolerance_us,
        )
        self.inner: dict[str, Schedule] = {}
        self._inner_paths: dict[str, CriticalPath] = {}
        self._indexes: dict[str, _Index] = {}
        self._top_path: CriticalPath | None = None
        # Breadth-first from the top: a malformed parent cycle is never reached, so never built.
        level = list(self.top.executions)
        while level:
            following: list[Execution] = []
            for container in level:
                children = by_parent.get(container.id)
                if not children:
                    continue
                inner = Schedule(
                    (_clipped(c, container) for c in children),
                    needs=needs,
                    run_start_us=container.start_us,
                    run_end_us=container.end_us,
                    tolerance_us=tolerance_us,
                )
                self.inner[container.id] = inner
                following.extend(inner.executions)
            level = following

    @property
    def observed_end_us(self) -> int:
        return self.top.replay_end_us()

    def critical_path(self) -> RunPath:
        top = self._top()
        path: list[str] = []
        steps: list[PathStep] = []
        self._walk(top, None, 0, 0, path, steps, on_path=True)
        return RunPath(top.run_start_us, top.run_end_us, tuple(path), tuple(steps))

    def _walk(
        self,
        found: CriticalPath,
        parent_id: str | None,
        depth: int,
        outer_slack_us: int,
        path: list[str],
        steps: list[PathStep],
        *,
        on_path: bool,
    ) -> None:
        """Steps of one schedule (and, below each, its container's children); `on_path` is
        whether the container holding this schedule is itself on the run's path."""
        on_this_path = set(found.path) if on_path else set()
        inner_paths = {s.id: self._inner_path(s.id) for s in found.steps if s.id in self.inner}
        # The path in order: each container on it followed by its own inner path.
        for execution_id in found.path if on_path else ():
            path.append(execution_id)
            if execution_id in inner_paths:
                nested: list[str] = []
                self._walk(
                    inner_paths[execution_id],
                    execution_id,
                    depth + 1,
                    0,
                    nested,
                    [],
                    on_path=True,
                )
                path.extend(nested)
        for step in found.steps:
            critical = step.id in on_this_path
            duration = step.end_us - step.start_us
            own = duration
            inner = inner_paths.get(step.id)
            if inner is not None:
                own = max(0, duration - _held_us(inner))
            steps.append(
                PathStep(
                    Step(
                        step.id,
                        step.node_id,
                        step.start_us,
                        step.end_us,
                        step.slack_us + outer_slack_us,
                        critical,
                    ),
                    parent_id,
                    depth,
                    own if critical else 0,
                )
            )
            if inner is not None:
                self._walk(
                    inner,
                    step.id,
                    depth + 1,
                    step.slack_us + outer_slack_us,
                    [],
                    steps,
                    on_path=critical,
                )

    def _top(self) -> CriticalPath:
        if self._top_path is None:
            self._top_path = self.top.critical_path()
        return self._top_path

    def _inner_path(self, container_id: str) -> CriticalPath:
        found = self._inner_paths.get(container_id)
        if found is None:
            found = self._inner_paths[container_id] = self.inner[container_id].critical_path()
        return found

    def gaps_on_path_us(self) -> dict[str, int]:
        """Scheduling gaps of the top-level executions on the path, by node id: how long
        each waited after what it depended on had ended."""
        found = self._top()
        index = {e.id: i for i, e in enumerate(self.top.executions)}
        waits: dict[str, int] = {}
        for execution_id in found.path:
            i = index[execution_id]
            node_id = self.top.executions[i].node_id
            waits[node_id] = waits.get(node_id, 0) + self.top.gaps[i]
        return waits

    def saving_us(self, node_id: str, factor: float = 0.5) -> int:
        """How much earlier the run would end if `node_id`'s own work took `factor` of its
        time: a leaf's whole duration, a container's self time. Replayed through every
        level's dependencies, never subtracted."""
        return self.observed_end_us - self._replayed_end(self.top, node_id, factor)

    def _replayed_end(self, schedule: Schedule, node_id: str, factor: float) -> int:
        return schedule.replay_end_us(self._changes("", schedule, node_id, factor))

    def _changes(self, key: str, schedule: Schedule, node_id: str, factor: float) -> dict[int, int]:
        """New durations, by execution index, of one schedule (`key`: its container's id,
        "" at the top) with `node_id`'s own work scaled by `factor`."""
        leaves, containers = self._index(key, schedule)
        executions = schedule.executions
        changes = {i: round(executions[i].duration_us * factor) for i in leaves.get(node_id, ())}
        for i, container_id, inside in containers:
            if node_id not in inside:
                continue
            e, inner = executions[i], self.inner[container_id]
            inner_changes = self._changes(container_id, inner, node_id, factor)
            duration = e.duration_us
            if inner_changes:
                duration += inner.replay_end_us(inner_changes) - inner.replay_end_us()
            if e.node_id == node_id:
                own = max(0, e.duration_us - _held_us(self._inner_path(container_id)))
                duration -= own - round(own * factor)
            if duration != e.duration_us:
                changes[i] = max(0, duration)
        return changes

    def _index(self, key: str, schedule: Schedule) -> _Index:
        """A schedule's leaves by node id, and its containers with every node id inside
        them (their own included): a saving visits only what it changes."""
        found = self._indexes.get(key)
        if found is None:
            leaves: dict[str, list[int]] = {}
            containers: list[tuple[int, str, frozenset[str]]] = []
            for i, e in enumerate(schedule.executions):
                if e.id in self.inner:
                    inner = self.inner[e.id]
                    inside = {e.node_id}
                    inner_leaves, inner_containers = self._index(e.id, inner)
                    inside.update(inner_leaves)
                    for _, _, nested in inner_containers:
                        inside.update(nested)
                    containers.append((i, e.id, frozenset(inside)))
                else:
                    leaves.setdefault(e.node_id, []).append(i)
            found = self._indexes[key] = (leaves, containers)
        return found


_Index = tuple[dict[str, list[int]], list[tuple[int, str, frozenset[str]]]]


def _held_us(found: CriticalPath) -> int:
    """How long a container's children on its inner path took, one after another."""
    return sum(s.end_us - s.start_us for s in found.steps if s.on_critical_path)


def _clipped(child: Execution, container: Execution) -> Execution:
    start = min(max(child.start_us, container.start_us), container.end_us)
    end = max(min(child.end_us, container.end_us), start)
    if (start, end) == (child.start_us, child.end_us):
        return child
    return Execution(
        child.id, child.node_id, start, end, child.predecessor_node_id, child.parent_id
    )
