"""One trace's spans mapped onto a flowscope run and its node executions.

The run is the trace's `invoke_workflow` span (OpenTelemetry GenAI), else its root span,
else, when the root is not an OpenInference span (an HTTP server span, say), the topmost
OpenInference CHAIN span below it. Its descendants are the node executions: parent links
follow the span tree, and a node's predecessor is the sibling that ended last before it
started. A trace without its run span yet (exporters send children first) maps to nothing:
its spans wait, stored, for the rest.

Attributes are read from both conventions, flowscope's own `flowscope.*` keys first:
OpenTelemetry GenAI (`gen_ai.*`, current and deprecated names) and OpenInference (`llm.*`,
`openinference.span.kind`). See docs/otlp.md for the whole table.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from flowscope.schemas.runs import NodeExecutionCreate, RunCreate

_OPENINFERENCE_TYPES = {
    "LLM": "llm",
    "RETRIEVER": "knowledge-retrieval",
    "TOOL": "tool",
    "CHAIN": "chain",
    "EMBEDDING": "embedding",
    "RERANKER": "reranker",
    "AGENT": "agent",
    "GUARDRAIL": "guardrail",
    "EVALUATOR": "evaluator",
    "PROMPT": "prompt",
}
_GENAI_OPERATION_TYPES = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "embeddings": "embedding",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "invoke_workflow": "workflow",
}
_WORKFLOW_OPERATION = "invoke_workflow"
_MAX_ID = 255

# The first attribute present wins (span attributes, then the resource's where noted).
_PROMPT_TOKENS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
)
_COMPLETION_TOKENS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
_TOTAL_TOKENS = ("llm.token_count.total", "gen_ai.usage.total_tokens")
_MODEL = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")
_PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
# (where, key) in order: "span" is the run span's attributes, "resource" its resource's.
_APP = (
    ("span", "flowscope.app_id"),
    ("resource", "flowscope.app_id"),
    ("span", "dify.app_id"),
    ("span", "dify.app.id"),
    ("resource", "service.name"),
)
_WORKFLOW = (
    ("span", "flowscope.workflow_id"),
    ("resource", "flowscope.workflow_id"),
    ("span", "gen_ai.workflow.name"),
    ("span", "dify.workflow_id"),
    ("span", "dify.workflow.id"),
)
_VERSION = (
    ("span", "flowscope.workflow_version"),
    ("resource", "flowscope.workflow_version"),
    ("span", "dify.workflow.version"),
    ("span", "dify.workflow_version"),
    ("resource", "service.version"),
)
_DEFAULT_APP = "unknown_service"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Span = Mapping[str, Any]


def map_trace(spans: Sequence[Span]) -> RunCreate | None:
    """The run of one trace's spans (one record per span id), or None while its run span
    has not arrived."""
    by_id = {span["s"]: span for span in spans}
    children: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        if span["p"] is not None:
            children[span["p"]].append(span)
    run_span = _run_span(spans, by_id, children)
    if run_span is None:
        return None
    nodes = _descendants(run_span, children)
    # A run span that is itself a model or tool call (a one-span trace) is also its node.
    if _is_call(run_span):
        nodes.insert(0, run_span)
    node_ids = {span["s"] for span in nodes}
    ordered = sorted(nodes, key=lambda s: (s["start"], s["s"]))
    ended = _ended_siblings(ordered)
    executions = [
        _node(span, index, node_ids, ended.get(span["p"]))
        for index, span in enumerate(ordered, start=1)
    ]
    return _run(run_span, executions)


def _run_span(
    spans: Sequence[Span], by_id: Mapping[str, Span], children: Mapping[str, list[Span]]
) -> Span | None:
    workflows = [s for s in spans if s["a"].get("gen_ai.operation.name") == _WORKFLOW_OPERATION]
    if workflows:
        return min(workflows, key=lambda s: (_depth(s, by_id), s["start"], s["s"]))
    roots = [s for s in spans if s["p"] is None or s.get("remote")]
    if not roots:
        return None
    root = min(roots, key=lambda s: (s["start"], s["s"]))
    if "openinference.span.kind" in root["a"]:
        return root
    chain = _topmost_chain(root, children)
    return chain if chain is not None else root


def _topmost_chain(root: Span, children: Mapping[str, list[Span]]) -> Span | None:
    level = list(children.get(root["s"], ()))
    while level:
        chains = [s for s in level if s["a"].get("openinference.span.kind") == "CHAIN"]
        if chains:
            return min(chains, key=lambda s: (s["start"], s["s"]))
        level = [child for span in level for child in children.get(span["s"], ())]
    return None


def _depth(span: Span, by_id: Mapping[str, Span]) -> int:
    depth, seen = 0, {span["s"]}
    parent = span["p"]
    while parent is not None and parent in by_id and parent not in seen:
        seen.add(parent)
        depth += 1
        parent = by_id[parent]["p"]
    return depth


def _descendants(run_span: Span, children: Mapping[str, list[Span]]) -> list[Span]:
    out: list[Span] = []
    seen = {run_span["s"]}
    stack = list(children.get(run_span["s"], ()))
    while stack:
        span = stack.pop()
        if span["s"] in seen:  # a malformed trace may loop: each span once
            continue
        seen.add(span["s"])
        out.append(span)
        stack.extend(children.get(span["s"], ()))
    return out


def _is_call(span: Span) -> bool:
    attributes = span["a"]
    kind = attributes.get("openinference.span.kind")
    operation = attributes.get("gen_ai.operation.name")
    return (
        kind in ("LLM", "EMBEDDING", "RETRIEVER", "RERANKER", "TOOL")
        or _GENAI_OPERATION_TYPES.get(operation or "") in ("llm", "embedding", "tool")
        or _first_int(attributes, _PROMPT_TOKENS + _COMPLETION_TOKENS + _TOTAL_TOKENS) is not None
    )


def _node(
    span: Span, index: int, node_ids: set[str], siblings: _Ended | None
) -> NodeExecutionCreate:
    attributes = span["a"]
    prompt = _first_int(attributes, _PROMPT_TOKENS)
    completion = _first_int(attributes, _COMPLETION_TOKENS)
    total = _first_int(attributes, _TOTAL_TOKENS)
    if total is None and (prompt is not None or completion is not None):
        total = (prompt or 0) + (completion or 0)
    node: NodeExecutionCreate = {
        "id": span["s"],
        "node_id": _node_id(span),
        "node_type": _node_type(span),
        "title": span["name"],
        "index": index,
        "status": _status(span),
        "started_at": _time(span["start"]),
        "finished_at": _time(span["end"]) if span["end"] else None,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "model_name": _first_text(attributes, _MODEL),
        "model_provider": _first_text(attributes, _PROVIDER),
        "parent_id": span["p"] if span["p"] in node_ids else None,
        "predecessor_node_id": _predecessor(span, siblings),
        "error": span.get("msg"),
        "input_hash": span.get("h"),
    }
    cost = _number(attributes.get("llm.cost.total"))
    if cost is not None:
        node["cost"] = cost
    if attributes.get("flowscope.cache_hit") is True:
        node["cache_hit"] = True
    return node


def _node_type(span: Span) -> str:
    attributes = span["a"]
    explicit = _text(attributes.get("flowscope.node_type") or attributes.get("dify.node_type"))
    if explicit:
        return explicit
    kind = attributes.get("openinference.span.kind")
    if isinstance(kind, str) and kind:
        return _OPENINFERENCE_TYPES.get(kind.upper(), kind.lower()[:_MAX_ID])
    operation = attributes.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation:
        return _GENAI_OPERATION_TYPES.get(operation, operation[:_MAX_ID])
    if "gen_ai.tool.name" in attributes or "tool.name" in attributes:
        return "tool"
    if "http.request.method" in attributes or "http.method" in attributes:
        return "http-request"
    if "db.system" in attributes or "db.system.name" in attributes:
        return "database"
    return "span"


def _node_id(span: Span) -> str:
    attributes = span["a"]
    explicit = attributes.get("flowscope.node_id") or attributes.get("dify.node_id")
    return _text(explicit) or str(span["name"])


# Finished spans under one parent, ordered by (end, span id), with their ends for bisection.
_Ended = tuple[list[tuple[int, str]], list[Span]]


def _ended_siblings(spans: Sequence[Span]) -> dict[str | None, _Ended]:
    by_parent: dict[str | None, list[Span]] = defaultdict(list)
    for span in spans:
        if span["end"] is not None:
            by_parent[span["p"]].append(span)
    out: dict[str | None, _Ended] = {}
    for parent, group in by_parent.items():
        group.sort(key=lambda s: (s["end"], s["s"]))
        out[parent] = ([(s["end"], s["s"]) for s in group], group)
    return out


def _predecessor(span: Span, siblings: _Ended | None) -> str | None:
    """The node id of the sibling that ended last at or before this span started (latest
    end, then highest span id): a binary search, not a scan, for traces with wide fan-out."""
    if siblings is None:
        return None
    keys, group = siblings
    position = bisect_right(keys, (span["start"], "\uffff")) - 1
    while position >= 0 and group[position] is span:  # a zero-length span is not its own
        position -= 1
    return None if position < 0 else _node_id(group[position])


def _run(span: Span, executions: list[NodeExecutionCreate]) -> RunCreate:
    status = _status(span)
    if status == "succeeded" and any(n["status"] == "failed" for n in executions):
        status = "partial-succeeded"  # the workflow completed although a node failed
    run: RunCreate = {
        "id": span["t"],
        "app_id": _identity(span, _APP) or _DEFAULT_APP,
        "workflow_id": _identity(span, _WORKFLOW) or span["name"],
        "workflow_version": _identity(span, _VERSION),
        "status": status,
        "started_at": _time(span["start"]),
        "finished_at": _time(span["end"]) if span["end"] else None,
        "error": span.get("msg"),
        "triggered_from": "otlp",
        "inputs_hash": span.get("h"),
        "node_executions": executions,
    }
    return run


def _identity(span: Span, sources: Sequence[tuple[str, str]]) -> str | None:
    for where, key in sources:
        text = _text((span["a"] if where == "span" else span["r"]).get(key))
        if text:
            return text
    return None


def _status(span: Span) -> Any:
    if span.get("err"):
        return "failed"
    return "succeeded" if span["end"] else "running"


def _time(nanoseconds: int) -> datetime:
    return _EPOCH + timedelta(microseconds=nanoseconds // 1000)


def _first_int(attributes: Mapping[str, Any], keys: Sequence[str]) -> int | None:
    for key in keys:
        value = attributes.get(key)
        if value is None or isinstance(value, bool):
            continue
        try:
            number = int(float(value))
        except (TypeError, ValueError):
            continue
        if number >= 0:
            return number
    return None


def _first_text(attributes: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        text = _text(attributes.get(key))
        if text:
            return text
    return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text[:_MAX_ID] if text else None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 and number != float("inf") else None
