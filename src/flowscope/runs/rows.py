"""From wire schemas to table rows: derived fields, cost estimates, and status ranks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from pydantic import TypeAdapter, ValidationError

from flowscope.problems import Problem
from flowscope.runs.pricing import PriceBook
from flowscope.schemas.runs import NodeExecutionCreate, RunCreate
from flowscope.store.rows import NodeRow, RunRow, elapsed_ms, status_rank
from flowscope.timeutil import OUT_OF_RANGE, in_range, to_us

_DATETIME: TypeAdapter[datetime | None] = TypeAdapter(datetime | None)


class RunTotals(NamedTuple):
    """A run's figures from its node executions; the fields are workflow_runs columns."""

    node_count: int = 0
    cache_hits: int = 0
    unpriced_node_executions: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cost: float | None = None
    currency: str = "USD"

    def stored(self, reported_total_tokens: int | None) -> RunTotals:
        """As the run row keeps them: a total the run reported itself wins over the sum."""
        if reported_total_tokens is None:
            return self
        return self._replace(total_tokens=reported_total_tokens)


NO_NODES = RunTotals()

# Descriptive fields live in one JSON text column: every bound column costs ~0.5 µs per row on
# SQLite (see docs/benchmarks.md), and analytics never filter on these.
DETAIL_FIELDS = (
    "title",
    "index",
    "predecessor_node_id",
    "error",
    "iteration_id",
    "iteration_index",
    "loop_id",
    "loop_index",
    "cache_lookup",
    "truncated",
)


_BACKWARDS = "finished_at is before started_at"


def time_problems(runs: Sequence[RunCreate]) -> list[Problem]:
    """A problem for every time out of range (flowscope.limits), and for every run or node
    execution that finished before it started."""
    problems: list[Problem] = []
    for i, run in enumerate(runs):
        _check_times(problems, i, None, run["started_at"], run.get("finished_at"))
        for j, node in enumerate(run.get("node_executions", ())):
            _check_times(problems, i, j, node["started_at"], node.get("finished_at"))
    return problems


def raw_time_problems(payload: Any) -> list[Problem]:
    """The same checks over a raw JSON batch that failed validation (the error path only)."""
    problems: list[Problem] = []
    runs = payload.get("runs") if isinstance(payload, dict) else None
    for i, run in enumerate(runs if isinstance(runs, list) else []):
        if not isinstance(run, dict):
            continue
        _check_raw_times(problems, i, None, run)
        nodes = run.get("node_executions")
        for j, node in enumerate(nodes if isinstance(nodes, list) else []):
            if isinstance(node, dict):
                _check_raw_times(problems, i, j, node)
    return problems


def _check_times(
    problems: list[Problem],
    run: int,
    node: int | None,
    started: datetime,
    finished: datetime | None,
) -> None:
    if not in_range(started):
        problems.append(Problem(run, "started_at", f"started_at {OUT_OF_RANGE}", node=node))
    elif finished is not None and not in_range(finished):
        problems.append(Problem(run, "finished_at", f"finished_at {OUT_OF_RANGE}", node=node))
    elif _finished_before_start(started, finished):
        problems.append(Problem(run, "finished_at", _BACKWARDS, node=node))


def _check_raw_times(
    problems: list[Problem], run: int, node: int | None, item: dict[str, Any]
) -> None:
    times = []
    for name in ("started_at", "finished_at"):
        try:
            times.append(_DATETIME.validate_python(item.get(name)))
        except ValidationError:  # pydantic named it already
            return
    started, finished = times
    if started is not None:
        _check_times(problems, run, node, started, finished)


def _finished_before_start(started: datetime, finished: datetime | None) -> bool:
    if finished is None:
        return False
    try:
        return finished < started
    except TypeError:  # one naive (UTC by contract), one aware
        return to_us(finished) < to_us(started)


def _add(total: Any, value: Any) -> Any:
    if value is None:
        return total
    return value if total is None else total + value


def run_totals(nodes: Sequence[NodeRow]) -> RunTotals:
    """A run's figures from its node rows: the one rule, for new runs before they are written
    and for runs re-sent (from every node row stored, once the batch's are in).

    A container (iteration, loop) may already include its children's tokens and cost, as
    Dify's do: a child's figure counts only when its container reports none itself. Figure by
    figure: a container that reports a total but no prompt/completion split (Dify's) leaves
    the split to its children.
    """
    by_id = {row.id: row for row in nodes}
    cache_hits = unpriced = 0
    prompt = completion = total = cost = None
    currencies = set()
    for row in nodes:
        cache_hits += bool(row.cache_hit)
        unpriced += row.cost_source == "unpriced"
        parent = by_id.get(row.parent_id) if row.parent_id is not None else None
        if parent is None or parent.prompt_tokens is None:
            prompt = _add(prompt, row.prompt_tokens)
        if parent is None or parent.completion_tokens is None:
            completion = _add(completion, row.completion_tokens)
        if parent is None or parent.total_tokens is None:
            total = _add(total, row.total_tokens)
        if parent is None or parent.cost is None:
            cost = _add(cost, row.cost)
        if row.cost is not None:
            currencies.add(row.currency)
    currency = max(currencies) if currencies else "USD"
    return RunTotals(len(nodes), cache_hits, unpriced, prompt, completion, total, cost, currency)


def run_row(
    run: RunCreate, tenant_id: int, workflow_pk: int, now_us: int, totals: RunTotals = NO_NODES
) -> RunRow:
    started = to_us(run["started_at"])
    finished_at = run.get("finished_at")
    finished = None if finished_at is None else to_us(finished_at)
    reported_total = run.get("total_tokens")
    return RunRow(
        run_id=run["id"],
        tenant_id=tenant_id,
        workflow_pk=workflow_pk,
        workflow_version=run.get("workflow_version"),
        status=run["status"],
        status_rank=status_rank(run["status"]),
        started_at_us=started,
        finished_at_us=finished,
        elapsed_ms=elapsed_ms(run.get("elapsed_ms"), started, finished),
        error=run.get("error"),
        triggered_from=run.get("triggered_from"),
        inputs_hash=run.get("inputs_hash"),
        reported_total_tokens=reported_total,
        **totals.stored(reported_total)._asdict(),
        created_at_us=now_us,
        updated_at_us=now_us,
    )


PRICED_NODE_TYPES = frozenset({"llm", "embedding"})
"""Node types whose token use costs money: without a price they count as unpriced."""


CURRENCY_ALIASES = {"RMB": "CNY"}
"""Codes engines write that are not ISO 4217 (Dify writes RMB for the renminbi)."""


def currency_code(reported: str) -> str:
    """The ISO 4217 code of a reported currency: upper case, aliases resolved."""
    code = reported.upper()
    return CURRENCY_ALIASES.get(code, code)


def node_cost(node: NodeExecutionCreate, prices: PriceBook) -> tuple[float | None, str, str]:
    """(cost, currency, cost_source) of a node execution."""
    currency = currency_code(node.get("currency", "USD"))
    cost = node.get("cost")
    if cost is not None:
        return cost, currency, "reported"
    model = node.get("model_name")
    prompt, completion = node.get("prompt_tokens"), node.get("completion_tokens")
    if not model:
        # A model call that used tokens but named no model cannot be priced: say so.
        called = node.get("node_type") in PRICED_NODE_TYPES and (prompt or completion)
        return None, currency, "unpriced" if called else "none"
    if prompt is None and completion is None:
        return None, currency, "unpriced"
    estimate = prices.estimate(node.get("model_provider"), model, prompt or 0, completion or 0)
    if estimate is None:
        return None, currency, "unpriced"
    return estimate, "USD", "estimated"


def node_row(node: NodeExecutionCreate, run_pk: int, prices: PriceBook) -> NodeRow:
    started = to_us(node["started_at"])
    finished_at = node.get("finished_at")
    finished = None if finished_at is None else to_us(finished_at)
    prompt, completion = node.get("prompt_tokens"), node.get("completion_tokens")
    total = node.get("total_tokens")
    if total is None and (prompt is not None or completion is not None):
        total = (prompt or 0) + (completion or 0)
    cost, currency, source = node_cost(node, prices)
    details = {key: value for key in DETAIL_FIELDS if (value := node.get(key)) is not None}
    # Positional: this runs once per node execution, and keywords cost ~1 µs more.
    return NodeRow(
        run_pk,
        node["id"],
        node["node_id"],
        node["node_type"],
        node["status"],
        started,
        finished,
        elapsed_ms(node.get("elapsed_ms"), started, finished),
        node.get("model_provider"),
        node.get("model_name"),
        prompt,
        completion,
        total,
        cost,
        currency,
        source,
        node.get("cache_hit", False),
        node.get("input_hash"),
        node.get("retry_count", 0),
        node.get("parent_id"),
        orjson.dumps(details).decode() if details else None,
    )
