"""Traces that Dify itself exports, mapped onto exactly the run `flowscope import dify` makes.

Dify has three trace paths (langgenius/dify, api/core/ops/; docs/otlp.md says which
versions): the unified path (`unified_trace/`: the generic `otel` provider, and Phoenix or
LangSmith with OPS_TRACE_UNIFIED_ENABLED), the legacy Arize Phoenix provider, and the newer
export (`otlp_trace.py`, `provider_export.py`). They agree on little but this: the run's and
the node executions' Dify ids travel in attributes (`metadata` JSON, `dify.*`), never as
span ids. So the run id is Dify's workflow run id, node execution ids are Dify's, and a run
received both as a trace and from Dify's database is one run.

What differs, and how it is read:
- the run span: the span with a workflow run id that is not a node (the unified and legacy
  paths put a `Dify` or message span above it, which is skipped);
- the node id: `metadata.node_id` (unified), `dify.node.id` (newer export); the legacy
  Phoenix path exports no graph node ids, so its nodes are named by their titles;
- parents: the unified and the newer legacy paths hang each node under its *predecessor's*
  span and iteration or loop items under synthetic `iteration[i]` wrappers, so a node's
  span parent is its predecessor, a wrapper's parent its container, never a container link;
- tokens: every unified node span carries usage, 0 on nodes that call no model (read as
  none), and a container's is overwritten with 0 (read as its items' sum, as Dify's own
  row has it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, get_args

from flowscope.integrations.dify_rows import dify_cost, elapsed_ms, link_nodes, node_status
from flowscope.integrations.otlp_values import (
    Span,
    amount,
    count,
    first_int,
    first_text,
    text,
    time_of,
)
from flowscope.limits import MAX_ID
from flowscope.schemas.runs import NodeExecutionCreate, NodeStatus, RunCreate, RunStatus

_RUN_ID = ("metadata.workflow_run_id", "dify.workflow.run_id")
_EXECUTION_ID = ("metadata.node_execution_id", "dify.node.execution_id")
_MARKS = frozenset(
    {
        "dify.span.id",
        "dify.workflow.run_id",
        "dify.node.execution_id",
        "dify_trace_id",
        "metadata.workflow_run_id",
        "metadata.node_execution_id",
    }
)
_CONTAINERS = frozenset({"iteration", "loop"})
_NODE_STATUSES = frozenset(get_args(NodeStatus))
_RUN_STATUSES = frozenset(get_args(RunStatus))
_MODEL_TYPES = frozenset({"llm", "question-classifier", "parameter-extractor", "agent"})
_PROMPT = ("metadata.prompt_tokens", "llm.token_count.prompt", "gen_ai.usage.input_tokens")
_COMPLETION = (
    "metadata.completion_tokens",
    "llm.token_count.completion",
    "gen_ai.usage.output_tokens",
)
_TOTAL = ("metadata.total_tokens", "llm.token_count.total", "gen_ai.usage.total_tokens")
_MODEL = ("metadata.model_name", "llm.model_name", "gen_ai.request.model")
_PROVIDER = ("metadata.model_provider", "llm.provider", "gen_ai.provider.name")


def is_dify_trace(spans: Sequence[Span]) -> bool:
    """Whether any span carries Dify's ids."""
    return any(not _MARKS.isdisjoint(span["a"]) for span in spans)


def map_dify_trace(spans: Sequence[Span]) -> RunCreate | None:
    """The run of a Dify trace, or None while its run span has not arrived (the legacy
    Phoenix provider sends it last)."""
    by_id = {span["s"]: span for span in spans}
    run_span = _run_span(spans, by_id)
    if run_span is None:
        return None
    nodes = [
        span
        for span in spans
        if _is_node(span) and _owning_run(span, by_id) in (run_span["s"], None)
    ]
    executions = _executions(nodes, by_id)
    return _run(run_span, executions)


def _run_span(spans: Sequence[Span], by_id: Mapping[str, Span]) -> Span | None:
    candidates = [s for s in spans if _is_run(s)]
    if not candidates:
        return None
    return min(candidates, key=lambda s: (_depth(s, by_id), s["start"], s["s"]))


def _is_run(span: Span) -> bool:
    attributes = span["a"]
    return (
        any(attributes.get(key) for key in _RUN_ID) and not _is_node(span) and not _is_wrapper(span)
    )


def _is_node(span: Span) -> bool:
    attributes = span["a"]
    if _is_wrapper(span):
        return False
    return any(attributes.get(key) for key in _EXECUTION_ID) or bool(
        attributes.get("metadata.node_type") and attributes.get("metadata.node_id")
    )


def _is_wrapper(span: Span) -> bool:
    attributes = span["a"]
    return bool(
        attributes.get("dify.span.synthetic") is True
        or attributes.get("dify.wrapper.synthetic") is True
        or attributes.get("metadata.synthetic") is True
        or attributes.get("metadata.wrapper_type")
    )


def _depth(span: Span, by_id: Mapping[str, Span]) -> int:
    depth, seen, parent = 0, {span["s"]}, span["p"]
    while parent is not None and parent in by_id and parent not in seen:
        seen.add(parent)
        depth += 1
        parent = by_id[parent]["p"]
    return depth


def _owning_run(span: Span, by_id: Mapping[str, Span]) -> str | None:
    """The nearest run span above a node (a workflow run as a tool nests its own run span
    under the tool's), or None when none is above it."""
    seen, parent = {span["s"]}, span["p"]
    while parent is not None and parent in by_id and parent not in seen:
        seen.add(parent)
        if _is_run(by_id[parent]):
            return parent
        parent = by_id[parent]["p"]
    return None


def _execution_id(span: Span) -> str:
    attributes = span["a"]
    for key in _EXECUTION_ID:
        found = text(attributes.get(key))
        if found:
            return found
    if "dify.span.id" in attributes:
        return text(attributes["dify.span.id"]) or span["s"]
    # The legacy Phoenix path's metadata.node_id is the execution id, not the graph's.
    return text(attributes.get("metadata.node_id")) or span["s"]


def _node_type(span: Span) -> str:
    attributes = span["a"]
    return (
        text(attributes.get("metadata.node_type"))
        or text(attributes.get("dify.node.type"))
        or span["name"].split("_", 1)[0][:64]
    )


def _title(span: Span, node_type: str) -> str | None:
    """The node's title; None for an untitled node (the span is then named by its type)."""
    attributes = span["a"]
    if "metadata.app_name" in attributes and "dify.span.id" not in attributes:
        return text(attributes["metadata.app_name"])  # the legacy path's node title
    name = str(attributes.get("dify.span.name") or span["name"])
    if name == node_type:
        return None
    return name[len(node_type) + 1 :] if name.startswith(f"{node_type}_") else name


def _graph_node_id(span: Span, node_type: str) -> str:
    attributes = span["a"]
    title = _title(span, node_type) or node_type
    if "dify.node.id" in attributes:
        return text(attributes["dify.node.id"]) or title
    if "dify.span.id" in attributes:  # unified: metadata.node_id is the graph node id
        return text(attributes.get("metadata.node_id")) or title
    return title[:MAX_ID]  # legacy Phoenix: no graph node id is exported


def _executions(nodes: list[Span], by_id: Mapping[str, Span]) -> list[NodeExecutionCreate]:
    ordered = sorted(nodes, key=lambda s: (s["start"], s["s"]))
    out: list[dict[str, Any]] = []
    span_of: dict[str, Span] = {}
    node_id_of: dict[str, str] = {}  # span id -> graph node id
    for span in ordered:
        node_id_of[span["s"]] = _graph_node_id(span, _node_type(span))
    for index, span in enumerate(ordered, start=1):
        node = _node(span, index, by_id, node_id_of)
        span_of[node["id"]] = span
        out.append(node)
    link_nodes(out, [time_of(span_of[n["id"]]["start"]) for n in out])
    _container_fallback(out, span_of)
    _container_totals(out)
    for node in out:
        for key in ("iteration_id", "loop_id"):
            if node.get(key) is None:
                node.pop(key, None)
    return out  # type: ignore[return-value]


def _node(
    span: Span, index: int, by_id: Mapping[str, Span], node_id_of: Mapping[str, str]
) -> dict[str, Any]:
    attributes = span["a"]
    node_type = _node_type(span)
    title = _title(span, node_type)
    model = first_text(attributes, _MODEL)
    prompt = first_int(attributes, _PROMPT)
    completion = first_int(attributes, _COMPLETION)
    total = first_int(attributes, _TOTAL)
    if not (prompt or completion or total):
        # Dify's trace writes usage 0 on every node without usage it could read (a node that
        # called no model, or an LLM node whose process data was truncated): none known.
        prompt = completion = total = None
    status = node_status(
        text(attributes.get("metadata.status") or attributes.get("metadata.node_status")) or ""
    )
    if status not in _NODE_STATUSES:  # none, or one a later Dify invents: from the span
        status = "failed" if span.get("err") else "succeeded"
    node: dict[str, Any] = {
        "id": _execution_id(span),
        "node_id": node_id_of[span["s"]],
        "node_type": node_type,
        "title": title,
        "index": index,
        "status": status,
        "started_at": time_of(span["start"]),
        "finished_at": time_of(span["end"]) if span["end"] else None,
        "error": _error(span),
        "model_name": model,
        "model_provider": first_text(attributes, _PROVIDER),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        # An LLM node's trace input is its rendered prompt, not the node's inputs that the
        # database import hashes: left to the import rather than written two ways.
        "input_hash": None if node_type in _MODEL_TYPES else span.get("h"),
        "predecessor_node_id": _predecessor(attributes, span, by_id, node_id_of),
        "iteration_id": _dify_text(attributes, "iteration_id"),
        "iteration_index": _dify_index(attributes, "iteration_index"),
        "loop_id": _dify_text(attributes, "loop_id"),
        "loop_index": _dify_index(attributes, "loop_index"),
        "parent_id": _wrapped_container(span, by_id),
    }
    node.update(_cost(attributes))
    return {key: value for key, value in node.items() if value is not None or key in _KEEP}


_KEEP = frozenset({"iteration_id", "loop_id", "iteration_index", "loop_index", "parent_id"})


def _predecessor(
    attributes: Mapping[str, Any],
    span: Span,
    by_id: Mapping[str, Span],
    node_id_of: Mapping[str, str],
) -> str | None:
    explicit = text(attributes.get("metadata.predecessor_node_id"))
    if explicit:
        return explicit
    # Unified and legacy paths: a node's span hangs under its predecessor's.
    parent = by_id.get(span["p"] or "")
    if parent is not None and parent["s"] in node_id_of:
        return node_id_of[parent["s"]]
    return None


def _wrapped_container(span: Span, by_id: Mapping[str, Span]) -> str | None:
    """An item under a synthetic `iteration[i]` wrapper belongs to the wrapper's container."""
    wrapper = by_id.get(span["p"] or "")
    if wrapper is None or not _is_wrapper(wrapper):
        return None
    container_id = text(
        wrapper["a"].get("metadata.container_execution_id")
        or wrapper["a"].get("dify.wrapper.container_execution_id")
    )
    if container_id:
        return container_id
    container = by_id.get(wrapper["p"] or "")
    return None if container is None else _execution_id(container)


def _container_fallback(nodes: list[dict[str, Any]], span_of: Mapping[str, Span]) -> None:
    """Items whose container was not found by graph node id (the legacy path names nodes by
    title): the iteration or loop execution whose time holds the item's start."""
    containers = [n for n in nodes if n["node_type"] in _CONTAINERS]
    for node in nodes:
        if node.get("parent_id") is not None:
            continue
        kind = "iteration" if node.get("iteration_id") else "loop" if node.get("loop_id") else None
        if kind is None:
            continue
        start = span_of[node["id"]]["start"]
        holding = [
            c
            for c in containers
            if c["node_type"] == kind
            and c["id"] != node["id"]
            and span_of[c["id"]]["start"] <= start <= (span_of[c["id"]]["end"] or start)
        ]
        if holding:
            node["parent_id"] = max(holding, key=lambda c: span_of[c["id"]]["start"])["id"]


def _container_totals(nodes: list[dict[str, Any]]) -> None:
    """A container's tokens as Dify's row has them: its items' sum, where the trace says 0."""
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for node in nodes:
        if node.get("parent_id"):
            by_parent.setdefault(node["parent_id"], []).append(node)

    def total(node: dict[str, Any], seen: set[str]) -> int | None:
        if node["node_type"] not in _CONTAINERS or node.get("total_tokens"):
            return node.get("total_tokens")
        seen.add(node["id"])
        parts = [
            total(child, seen) for child in by_parent.get(node["id"], ()) if child["id"] not in seen
        ]
        found = [p for p in parts if p is not None]
        node["total_tokens"] = sum(found) if found else None
        return node["total_tokens"]

    for node in nodes:
        if node["node_type"] in _CONTAINERS:
            total(node, set())
            if node["total_tokens"] is None:
                node.pop("total_tokens")


def _error(span: Span) -> str | None:
    """The status message, else the legacy path's `status_message` (it leaves a handled
    exception's status OK), else the newer export's `error.message`."""
    attributes = span["a"]
    message = (
        span.get("msg")
        or attributes.get("metadata.status_message")
        or attributes.get("error.message")
    )
    return str(message) if message else None


def _cost(attributes: Mapping[str, Any]) -> dict[str, Any]:
    meta = {
        "total_price": attributes.get("metadata.total_price"),
        "currency": attributes.get("metadata.currency"),
    }
    found = dify_cost(meta)
    if found:
        return found
    reported = amount(attributes.get("llm.cost.total"))
    if reported is None:
        return {}
    return dify_cost({"total_price": reported, "currency": attributes.get("dify.cost.currency")})


def _dify_text(attributes: Mapping[str, Any], key: str) -> str | None:
    return text(attributes.get(f"metadata.{key}") or attributes.get(f"dify.node.{key}"))


def _dify_index(attributes: Mapping[str, Any], key: str) -> int | None:
    for name in (f"metadata.{key}", f"dify.node.{key}"):
        value = attributes.get(name)
        if value not in (None, ""):
            return count(value)
    return None


def _run(span: Span, executions: list[NodeExecutionCreate]) -> RunCreate:
    attributes, resource = span["a"], span["r"]
    status = first_text(attributes, ("metadata.status", "metadata.workflow_run_status"))
    if status not in _RUN_STATUSES:  # none, or one a later Dify invents: from the span
        status = "failed" if span.get("err") else "succeeded" if span["end"] else "running"
    run: dict[str, Any] = {
        "id": first_text(attributes, _RUN_ID),
        "app_id": first_text(attributes, ("metadata.app_id", "dify.app_id"))
        or text(resource.get("service.name"))
        or "dify",
        "workflow_id": first_text(attributes, ("metadata.workflow_id", "dify.workflow.id"))
        or span["name"],
        "workflow_version": first_text(attributes, ("metadata.version", "dify.workflow.version")),
        "status": status,
        "started_at": time_of(span["start"]),
        "finished_at": time_of(span["end"]) if span["end"] else None,
        # As the import reads Dify's seconds (one rule for both).
        "elapsed_ms": elapsed_ms(amount(attributes.get("metadata.elapsed_time")))
        if span["end"]
        else None,
        "error": span.get("msg") or None,
        "triggered_from": text(attributes.get("metadata.triggered_from")) or "otlp",
        "inputs_hash": span.get("h"),
        "total_tokens": first_int(attributes, _TOTAL),
        "node_executions": executions,
    }
    return {key: value for key, value in run.items() if value is not None}  # type: ignore[return-value]
