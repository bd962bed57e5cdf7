"""From wire schemas to table rows: derived fields, cost estimates, and status ranks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from flowscope.runs.pricing import PriceBook
from flowscope.schemas.runs import NodeExecutionCreate, RunCreate
from flowscope.store.rows import NODE_COLUMNS, status_rank
from flowscope.timeutil import to_us

_DATETIME: TypeAdapter[datetime | None] = TypeAdapter(datetime | None)


RunTotals = tuple[int, int, int, int | None, int | None, int | None, float | None, str]
NO_NODES: RunTotals = (0, 0, 0, None, None, None, None, "USD")


_N = {name: i for i, name in enumerate(NODE_COLUMNS)}

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
)


def time_order_errors(runs: Sequence[RunCreate]) -> list[dict[str, Any]]:
    """A 422-style error for every run or node execution that finished before it started."""
    errors: list[dict[str, Any]] = []
    for i, run in enumerate(runs):
        if _finished_before_start(run["started_at"], run.get("finished_at")):
            errors.append(_time_error(("body", "runs", i, "finished_at")))
        for j, node in enumerate(run.get("node_executions", ())):
            if _finished_before_start(node["started_at"], node.get("finished_at")):
                errors.append(_time_error(("body", "runs", i, "node_executions", j, "finished_at")))
    return errors


def raw_time_order_errors(payload: Any) -> list[dict[str, Any]]:
    """The same check over a raw JSON batch that failed validation (the error path only)."""
    errors: list[dict[str, Any]] = []
    runs = payload.get("runs") if isinstance(payload, dict) else None
    for i, run in enumerate(runs if isinstance(runs, list) else []):
        if not isinstance(run, dict):
            continue
        if _raw_before(run):
            errors.append(_time_error(("body", "runs", i, "finished_at")))
        nodes = run.get("node_executions")
        for j, node in enumerate(nodes if isinstance(nodes, list) else []):
            if isinstance(node, dict) and _raw_before(node):
                errors.append(_time_error(("body", "runs", i, "node_executions", j, "finished_at")))
    return errors


def _raw_before(item: dict[str, Any]) -> bool:
    try:
        started = _DATETIME.validate_python(item["started_at"])
        finished = _DATETIME.validate_python(item["finished_at"])
    except (KeyError, ValidationError):
        return False
    if started is None or finished is None:
        return False
    return _finished_before_start(started, finished)


def _finished_before_start(started: datetime, finished: datetime | None) -> bool:
    if finished is None:
        return False
    try:
        return finished < started
    except TypeError:  # one naive (UTC by contract), one aware
        return to_us(finished) < to_us(started)


def _time_error(loc: tuple[Any, ...]) -> dict[str, Any]:
    return {"loc": list(loc), "msg": "finished_at is before started_at", "type": "value_error"}


def _elapsed_ms(reported: float | None, started_us: int, finished_us: int | None) -> float | None:
    if reported is not None:
        return reported
    if finished_us is None:
        return None
    return (finished_us - started_us) / 1000.0


def _add(total: Any, value: Any) -> Any:
    if value is None:
        return total
    return value if total is None else total + value


def run_totals(nodes: Sequence[tuple[Any, ...]]) -> RunTotals:
    """A run's figures from its node rows: the Python twin of ingest's _RUN_TOTALS SQL.

    A container (iteration, loop) may already include its children's tokens and cost, as
    Dify's do: a child's figure counts only when its container reports none itself. Figure by
    figure: a container that reports a total but no prompt/completion split (Dify's) leaves
    the split to its children.
    """
    by_id = {row[_N["id"]]: row for row in nodes}
    parent_at, tokens_at, cost_at = _N["parent_id"], _N["total_tokens"], _N["cost"]
    cache_hits = unpriced = 0
    prompt = completion = total = cost = None
    currencies = set()
    for row in nodes:
        cache_hits += bool(row[_N["cache_hit"]])
        unpriced += row[_N["cost_source"]] == "unpriced"
        parent = by_id.get(row[parent_at]) if row[parent_at] is not None else None
        if parent is None or parent[_N["prompt_tokens"]] is None:
            prompt = _add(prompt, row[_N["prompt_tokens"]])
        if parent is None or parent[_N["completion_tokens"]] is None:
            completion = _add(completion, row[_N["completion_tokens"]])
        if parent is None or parent[tokens_at] is None:
            total = _add(total, row[tokens_at])
        if parent is None or parent[cost_at] is None:
            cost = _add(cost, row[cost_at])
        if row[cost_at] is not None:
            currencies.add(row[_N["currency"]])
    currency = max(currencies) if currencies else "USD"
    return (len(nodes), cache_hits, unpriced, prompt, completion, total, cost, currency)


def run_row(
    run: RunCreate, tenant_id: int, workflow_pk: int, now_us: int, totals: RunTotals = NO_NODES
) -> tuple[Any, ...]:
    started = to_us(run["started_at"])
    finished_at = run.get("finished_at")
    finished = None if finished_at is None else to_us(finished_at)
    reported_total = run.get("total_tokens")
    return (
        run["id"],
        tenant_id,
        workflow_pk,
        run.get("workflow_version"),
        run["status"],
        status_rank(run["status"]),
        started,
        finished,
        _elapsed_ms(run.get("elapsed_ms"), started, finished),
        run.get("error"),
        run.get("triggered_from"),
        run.get("inputs_hash"),
        reported_total,
        *totals[:5],
        reported_total if reported_total is not None else totals[5],
        *totals[6:],
        now_us,
        now_us,
    )


PRICED_NODE_TYPES = frozenset({"llm", "embedding"})
"""Node types whose token use costs money: without a price they count as unpriced."""


def node_cost(node: NodeExecutionCreate, prices: PriceBook) -> tuple[float | None, str, str]:
    """(cost, currency, cost_source) of a node execution."""
    currency = node.get("currency", "USD")
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


def node_row(node: NodeExecutionCreate, run_pk: int | None, prices: PriceBook) -> tuple[Any, ...]:
    started = to_us(node["started_at"])
    finished_at = node.get("finished_at")
    finished = None if finished_at is None else to_us(finished_at)
    prompt, completion = node.get("prompt_tokens"), node.get("completion_tokens")
    total = node.get("total_tokens")
    if total is None and (prompt is not None or completion is not None):
        total = (prompt or 0) + (completion or 0)
    cost, currency, source = node_cost(node, prices)
    details = {key: value for key in DETAIL_FIELDS if (value := node.get(key)) is not None}
    return (
        run_pk,
        node["id"],
        node["node_id"],
        node["node_type"],
        node["status"],
        started,
        finished,
        _elapsed_ms(node.get("elapsed_ms"), started, finished),
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
