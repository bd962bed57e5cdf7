"""The wire form of recorded runs: dicts shaped like `RunCreate`, built on the background thread.

Timestamps stay `datetime` objects (orjson writes them as ISO 8601 in UTC, pydantic reads
them as they are), and optional fields are left out when unset to keep batches small.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flowscope.limits import MAX_ERROR
from flowscope.sdk.records import Node, Run
from flowscope.timeutil import from_us

# The schema's limit on error messages: a longer one would get the whole run rejected.


def _at(ns: int) -> datetime:
    return from_us(ns // 1000)


def node_to_wire(node: Node) -> dict[str, Any]:
    """The wire dict (`NodeExecutionCreate`) of a node, finished or still running."""
    finished = node.finished_ns  # read first: once set, every other field is final
    out: dict[str, Any] = {
        "id": node.id,
        "node_id": node.node_id,
        "node_type": node.node_type,
        "index": node.index,
        "started_at": _at(node.started_ns),
    }
    if finished:
        out["status"] = node.status
        out["finished_at"] = _at(finished)
        out["elapsed_ms"] = (finished - node.started_ns) / 1e6
        if node.error is not None:
            out["error"] = node.error[:MAX_ERROR]
    else:
        out["status"] = "running"
    if node.title is not None:
        out["title"] = node.title
    usage = node.llm_usage
    if usage is not None:
        model, provider, prompt, completion, total, cost, currency = usage
        out["model_name"] = model
        out["model_provider"] = provider
        out["prompt_tokens"] = prompt
        out["completion_tokens"] = completion
        out["total_tokens"] = total
        out["cost"] = cost
        out["currency"] = currency
    if node.cached:
        out["cache_hit"] = True
    if node.looked_up:
        out["cache_lookup"] = True
    if node.fields:
        out.update(node.fields)
    return out


def run_to_wire(run: Run, nodes: list[Node]) -> dict[str, Any]:
    """The wire dict (`RunCreate`) of an ended run with the given node executions."""
    out: dict[str, Any] = {
        "id": run.id,
        "app_id": run.app_id,
        "workflow_id": run.workflow_id,
        "status": run.status,
        "started_at": _at(run.started_ns),
        "finished_at": _at(run.finished_ns),
        "elapsed_ms": (run.finished_ns - run.started_ns) / 1e6,
    }
    if run.error is not None:
        out["error"] = run.error[:MAX_ERROR]
    if run.fields:
        out.update(run.fields)
    out["node_executions"] = [node_to_wire(node) for node in nodes]
    return out
