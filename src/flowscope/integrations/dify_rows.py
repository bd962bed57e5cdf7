"""Rows of Dify's `workflow_runs` and `workflow_node_executions` as flowscope runs (no I/O).

Each function takes row dicts as psycopg returns them (uuids, naive UTC timestamps, JSON
kept as text) and builds an unvalidated `RunCreate`-shaped dict; the importer validates it.
Dify stores inputs, outputs and process data as text that it may truncate, so every JSON
column is read tolerantly: a value that does not parse gives no hash, no split, no model.
Since 1.9 Dify moves a value over its budget to a file, records it in
`workflow_node_execution_offload` and keeps a cut copy in the row (values past the budget
become "...", long strings end in "..."): the source lists a node's offloaded columns in
`row["offloaded"]`, the node is marked `truncated`, and cut values are not read as figures.

Retries: before 1.9 each failed attempt was a row of its own with status `retry`. Since 1.9
one row is updated in place (running, `retry` while the next attempt runs, then its final
status) and keeps the last retry's error even when it succeeds; only Dify 1.16+ records the
attempts, in `process_data["__dify_retry_history"]`.

Tokens and cost: a container row (iteration, loop) already includes its children's, so each
child gets `parent_id` = the container's execution id and ingestion counts it only when the
container reports nothing itself (flowscope.ingestion.ingest).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
import rfc8785

from flowscope.limits import MAX_COUNT, MAX_ERROR, MAX_ID, MAX_RETRIES, MAX_TITLE
from flowscope.store.rows import UNFINISHED

Row = Mapping[str, Any]

# Dify's `pending` (queued, not started) has no flowscope twin: it is still running.
_NODE_STATUS = {"pending": "running"}
_RETRY = "retry"
_RETRY_HISTORY = "__dify_retry_history"  # Dify 1.16+: the failed attempts, in process data
_CUT = "..."  # what Dify's truncation leaves at the end of a value it cut
# Node types whose inputs name their model since graphon (build_model_identity_inputs).
_MODEL_IN_INPUTS = frozenset({"llm", "parameter-extractor", "question-classifier"})


def run_from_rows(run: Row, nodes: Sequence[Row]) -> dict[str, Any]:
    """A `RunCreate` dict from one `workflow_runs` row and its node execution rows."""
    status = run["status"]
    finished = status not in UNFINISHED  # Dify's run statuses are flowscope's
    # Dify writes 0 tokens and 0 s while a run is going: unknown rather than zero until it ends.
    tokens = run.get("total_tokens")
    return {
        "id": str(run["id"]),
        "app_id": str(run["app_id"]),
        "workflow_id": str(run["workflow_id"]),
        "workflow_version": _short(run.get("version")),
        "status": status,
        "started_at": utc(run["created_at"]),
        "finished_at": _maybe_utc(run.get("finished_at")),
        "elapsed_ms": elapsed_ms(run.get("elapsed_time")) if finished else None,
        "error": _text(run.get("error"), MAX_ERROR),
        "triggered_from": _short(run.get("triggered_from")),
        "inputs_hash": json_hash(run.get("inputs")),
        "total_tokens": tokens if (finished or tokens) else None,
        "node_executions": nodes_from_rows(
            nodes, finished=finished, finished_at=_maybe_utc(run.get("finished_at"))
        ),
    }


def nodes_from_rows(
    rows: Sequence[Row], *, finished: bool, finished_at: datetime | None = None
) -> list[dict[str, Any]]:
    """The `NodeExecutionCreate` dicts of one run's node rows, with container links and the
    retry counts that need the whole run to compute; `finished` (at `finished_at`) says
    whether the run has ended."""
    nodes = [node_from_row(row) for row in rows]
    starts = [row["created_at"] for row in rows]
    _settle_retrying(nodes, starts, finished, finished_at)
    link_nodes(nodes, starts)
    return nodes


def _settle_retrying(
    nodes: Sequence[dict[str, Any]],
    starts: Sequence[datetime],
    run_finished: bool,
    run_finished_at: datetime | None,
) -> None:
    """A `retry` row that no later row of the same attempt key follows is a row Dify 1.9+
    updated in place while the next attempt runs (or a legacy one whose next attempt has no
    row yet): running while the run goes on, failed once it has ended, as Dify fails the
    node executions a run leaves running. Earlier `retry` rows are legacy failed attempts."""
    last: dict[tuple[Any, ...], int] = {}
    for i in sorted(range(len(nodes)), key=lambda i: starts[i]):
        last[_attempt_key(nodes[i])] = i
    for i in last.values():
        node = nodes[i]
        if node["status"] != _RETRY:
            continue
        if not run_finished:
            # The error is the failed attempt's, not the running one's.
            node.update(status="running", finished_at=None, elapsed_ms=None, error=None)
            continue
        node["status"] = "failed"
        ended = run_finished_at
        if node["finished_at"] is None and ended is not None and ended >= node["started_at"]:
            node.update(finished_at=ended, elapsed_ms=None)  # from the timestamps
        elif node["finished_at"] is None:
            node["elapsed_ms"] = None


def link_nodes(nodes: Sequence[dict[str, Any]], starts: Sequence[datetime]) -> None:
    """Set each node's container (`parent_id`, unless already known) from its iteration or
    loop id, and each final row's `retry_count` from the `retry` rows of the same attempt
    key. Shared by the database import and Dify's traces (otlp_dify)."""
    containers = _containers(nodes, starts)
    retries = Counter(_attempt_key(node) for node in nodes if node["status"] == _RETRY)
    for node, started in zip(nodes, starts, strict=True):
        if node.get("parent_id") is None:
            node["parent_id"] = _parent_id(node, started, containers)
        if node["status"] != _RETRY:
            recorded = node.get("retry_count", 0)  # Dify 1.16+'s history, else none
            node["retry_count"] = min(recorded + retries.get(_attempt_key(node), 0), MAX_RETRIES)


def node_from_row(row: Row) -> dict[str, Any]:
    """A `NodeExecutionCreate` dict from one row, without `parent_id`, and with a
    `retry_count` only when Dify 1.16+ recorded the attempts in the row."""
    status = row["status"]
    node_type = row["node_type"]
    offloaded = frozenset(row.get("offloaded") or ())
    meta = parse_object(row.get("execution_metadata"))  # never truncated
    outputs = parse_object(row.get("outputs"))
    process = parse_object(row.get("process_data"))
    prompt, completion = _usage_split(outputs, process)
    models = [(process, "process_data" in offloaded)]
    if node_type in _MODEL_IN_INPUTS:
        models.insert(0, (parse_object(row.get("inputs")), "inputs" in offloaded))
    node: dict[str, Any] = {
        "id": str(row["id"]),
        "node_id": str(row["node_id"]),
        "node_type": node_type,
        "title": _text(row.get("title"), MAX_TITLE),
        "index": row.get("index"),
        "predecessor_node_id": _text(row.get("predecessor_node_id"), MAX_ID),
        "status": node_status(status),
        "started_at": utc(row["created_at"]),
        "finished_at": _maybe_utc(row.get("finished_at")),
        "elapsed_ms": (
            None if node_status(status) in UNFINISHED else elapsed_ms(row.get("elapsed_time"))
        ),
        # A node that succeeded after retries keeps the last retry's error in its row.
        "error": None if status == "succeeded" else _text(row.get("error"), MAX_ERROR),
        "model_provider": _first_whole(models, "model_provider"),
        "model_name": _first_whole(models, "model_name"),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": _count(meta.get("total_tokens")),
        # A hash of cut inputs would match other inputs cut alike.
        "input_hash": None if "inputs" in offloaded else json_hash(row.get("inputs")),
        "iteration_id": _text(meta.get("iteration_id"), MAX_ID),
        "iteration_index": _count(meta.get("iteration_index")),
        "loop_id": _text(meta.get("loop_id"), MAX_ID),
        "loop_index": _count(meta.get("loop_index")),
    }
    node.update(dify_cost(meta))
    attempts = process.get(_RETRY_HISTORY)
    if isinstance(attempts, list):
        node["retry_count"] = min(len(attempts), MAX_RETRIES)
    if offloaded:
        node["truncated"] = True
    return node


def node_status(status: str) -> str:
    """Dify's node status as flowscope's (`pending`, queued, is still running)."""
    return _NODE_STATUS.get(status, status)


def parse_object(text: str | None) -> dict[str, Any]:
    """A JSON object column, or {} when it is empty, truncated or not an object."""
    value = parse_json(text)
    return value if isinstance(value, dict) else {}


def parse_json(text: str | None) -> Any:
    """A JSON column's value, or None when it is empty or does not parse (truncated)."""
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def json_hash(text: str | None) -> str | None:
    """SHA-256 (hex) of the RFC 8785 canonical form of a JSON column, None if it has none.

    The same inputs written with other key orders or spacing hash the same, so repeated
    inputs are recognised across runs.
    """
    value = parse_json(text)
    if value is None:
        return None
    try:
        return hashlib.sha256(rfc8785.dumps(value)).hexdigest()
    except rfc8785.CanonicalizationError:  # e.g. an integer beyond 2**53
        return None


def utc(value: datetime) -> datetime:
    """Dify's timestamps are naive UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _maybe_utc(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def elapsed_ms(seconds: float | None) -> float | None:
    """Dify reports seconds; a missing, negative or non-finite one (also once in ms) is left
    to the timestamps."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    ms = seconds * 1000.0
    return ms if math.isfinite(ms) else None


def _text(value: Any, limit: int) -> str | None:
    """Non-empty text cut to what the schema takes (Dify's error texts can be long)."""
    if value is None:
        return None
    text = str(value)
    return text[:limit] if text else None


def _short(value: Any) -> str | None:
    return _text(value, MAX_ID) if isinstance(value, str) else None


def _count(value: Any) -> int | None:
    """A non-negative integer up to MAX_COUNT, or None for anything else (bools, strings,
    floats, counts no database column could sum)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT:
        return value
    return None


def _first_whole(sources: Sequence[tuple[dict[str, Any], bool]], key: str) -> str | None:
    """The first text under `key` in these objects that was not cut: in an object whose
    column Dify truncated (the flag), a value ending in "..." may be the head of a longer one
    or stand for a value past the budget."""
    for holder, truncated in sources:
        value = _short(holder.get(key))
        if value is not None and not (truncated and value.endswith(_CUT)):
            return value
    return None


def _usage_split(outputs: dict[str, Any], process: dict[str, Any]) -> tuple[int | None, int | None]:
    """(prompt, completion) tokens from `outputs.usage`, else from `process_data.usage`."""
    for holder in (outputs, process):
        usage = holder.get("usage")
        if isinstance(usage, dict):
            prompt = _count(usage.get("prompt_tokens"))
            completion = _count(usage.get("completion_tokens"))
            if prompt is not None or completion is not None:
                return prompt, completion
    return None, None


def dify_cost(meta: Mapping[str, Any]) -> dict[str, Any]:
    """`cost` and `currency` from `total_price` (often a string) and `currency`; nothing when
    either is unusable, rather than a cost in the wrong currency."""
    price = meta.get("total_price")
    if price is None or isinstance(price, bool):
        return {}
    try:
        amount = Decimal(str(price))
    except InvalidOperation:
        return {}
    if not amount.is_finite() or amount < 0:
        return {}
    currency = meta.get("currency") or "USD"
    if not isinstance(currency, str) or len(currency) != 3:
        return {}
    return {"cost": float(amount), "currency": currency.upper()}


def _containers(
    nodes: Sequence[dict[str, Any]], starts: Sequence[datetime]
) -> dict[str, list[tuple[datetime, str]]]:
    """The run's possible containers by node id: (start, execution id), in start order."""
    found: dict[str, list[tuple[datetime, str]]] = {}
    for node, started in zip(nodes, starts, strict=True):
        found.setdefault(node["node_id"], []).append((started, node["id"]))
    for executions in found.values():
        executions.sort()
    return found


def _parent_id(
    node: Mapping[str, Any], started: datetime, containers: dict[str, list[tuple[datetime, str]]]
) -> str | None:
    """The execution of the node's iteration or loop that started last at or before it: the
    innermost one when containers nest, and the right one when the container ran twice."""
    candidates = [
        candidate
        for container_id in (node["iteration_id"], node["loop_id"])
        for candidate in containers.get(container_id or "", ())
        if candidate[0] <= started and candidate[1] != node["id"]
    ]
    return max(candidates)[1] if candidates else None


def _attempt_key(node: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two rows attempts of the same execution: the node, and its place in an
    iteration or loop."""
    return (
        node["node_id"],
        node["iteration_id"],
        node["iteration_index"],
        node["loop_id"],
        node["loop_index"],
    )
