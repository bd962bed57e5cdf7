"""What is wrong with a batch of runs, and where, in the domain's terms.

Ingestion, the importers and the SDK find problems by position in a batch (which run, which
of its node executions, which field); each adapter says them in its own way: the REST API as
422 bodies (flowscope.api.errors), the importers as skipped runs, the SDK as rejected runs.
Nothing here knows HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one run of a batch."""

    run: int
    """The run's position in its batch."""
    field: str
    """The field at fault: the run's, or its node execution's when `node` is set."""
    message: str
    node: int | None = None
    """The node execution's position among the run's, when the problem is in it."""
    kind: str = "value_error"

    @property
    def in_run(self) -> tuple[str | int, ...]:
        """Where in the run: ("finished_at",) or ("node_executions", 3, "finished_at")."""
        if self.node is None:
            return (self.field,)
        return ("node_executions", self.node, self.field)

    @property
    def path(self) -> tuple[str | int, ...]:
        """Where in a batch document ({"runs": [...]})."""
        return ("runs", self.run, *self.in_run)

    def __str__(self) -> str:
        return f"{'.'.join(map(str, self.path))}: {self.message}"


class IngestRejected(Exception):
    """The batch has problems (it names something it may not touch, or a time runs
    backwards): nothing of it may be kept."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=_order))
        super().__init__("; ".join(map(str, self.problems)))

    def by_run(self) -> dict[int, str]:
        """The messages of each refused run, by its position in the batch (importers drop
        those runs and write the rest again)."""
        found: dict[int, list[str]] = {}
        for problem in self.problems:
            found.setdefault(problem.run, []).append(problem.message)
        return {position: "; ".join(messages) for position, messages in found.items()}


def _order(problem: Problem) -> tuple[int, int, str]:
    return (problem.run, -1 if problem.node is None else problem.node, problem.field)
