"""One trace's spans mapped onto a flowscope run and its node executions.

Dify's own traces go to otlp_dify. For every other trace (docs/otlp.md has the tables):

- **The run** is the trace's root span (no parent, or a remote one), whatever its kind; the
  spans of other roots of the same trace count under it. A trace whose root has not arrived
  yet maps to nothing: its spans wait, stored, for the rest.
- **Nodes** are the spans under it, except what is not a step of its own: a workflow-level
  wrapper (OpenLLMetry's `workflow` span) lends its children to its parent; what runs below
  a model call (its HTTP request, a second instrumentation's report of the same call) is part
  of the call; and a call that another call in the trace already reports (same tokens,
  within its time) is dropped, so tokens count once.
- **Node identity**: an explicit id (`flowscope.node_id`), else a path of names from the run
  down (`plan/ChatOpenAI`), each name the step's own (LangGraph's node, OpenLLMetry's entity,
  the GenAI agent or tool name, else the span name), with `#2`, `#3` for siblings of the same
  name in start order: the same step across runs is the same node, different steps differ.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from flowscope.integrations.otlp_dify import is_dify_trace, map_dify_trace
from flowscope.integrations.otlp_values import (
    Span,
    amount,
    first_int,
    first_text,
    text,
    time_of,
)
from flowscope.limits import MAX_ID
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
_TRACELOOP_TYPES = {"task": "chain", "agent": "agent", "tool": "tool", "workflow": "workflow"}
_GENAI_OPERATION_TYPES = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "embeddings": "embedding",
    "retrieval": "knowledge-retrieval",
    "execute_tool": "tool",
    "execute_task": "chain",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "invoke_workflow": "workflow",
}
_CALL_TYPES = frozenset({"llm", "embedding", "reranker"})  # leaves: nothing below is a step

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
_MODEL = (
    "gen_ai.response.model",
    "gen_ai.request.model",
    "llm.model_name",
    "embedding.model_name",
    "llm.invocation_parameters.model",
    "embedding.invocation_parameters.model",
    "metadata.ls_model_name",
)
_PROVIDER = (
    "gen_ai.provider.name",
    "gen_ai.system",
    "llm.provider",
    "llm.system",
    "metadata.ls_provider",
)
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
    ("span", "traceloop.workflow.name"),
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
DEFAULT_APP = "unknown_service"


def map_trace(spans: Sequence[Span], *, settle: bool = False) -> RunCreate | None:
    """The run of one trace's spans (one record per span id), or None while its run span
    has not arrived. With `settle`, for a trace whose root will not come (it is in a service
    that does not export here), the absent root is the run and the spans whose parent is
    absent are its top-level nodes."""
    if is_dify_trace(spans):  # Dify's run span is never missing for good: not settled
        return None if settle else map_dify_trace(spans)
    roots = sorted((s for s in spans if s["p"] is None or s.get("remote")), key=_start_order)
    if settle and not roots:
        present = {s["s"] for s in spans}
        orphans = sorted((s for s in spans if s["p"] not in present), key=_start_order)
        roots = [_absent_root(orphans), *orphans] if orphans else []
    if not roots:
        return None
    run_span = roots[0]
    children: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        if span["p"] is not None and not span.get("remote"):
            children[span["p"]].append(span)
    tree = _Tree(run_span, children)
    for other in roots[1:]:  # another root of the trace: its subtree counts under the run
        tree.adopt(other, run_span["s"])
    if _type(run_span) in _CALL_TYPES:  # a trace of one call: the call is also its node
        tree.add_call_as_node(run_span)
    tree.drop_duplicate_calls()
    ordered = sorted(tree.nodes, key=_start_order)
    ids = tree.node_ids(ordered)
    ended = _ended_siblings(ordered, tree.parent)
    executions = [
        _node(span, index, ids, tree, ended.get(tree.parent[span["s"]]))
        for index, span in enumerate(ordered, start=1)
    ]
    return _run(run_span, tree, executions)


def _absent_root(orphans: Sequence[Span]) -> Span:
    """A stand-in for a root that is in another service: from the first orphan's start to
    the last one's end, marked as continuing a remote trace."""
    ends = [s["end"] for s in orphans]
    return {
        "t": orphans[0]["t"],
        "s": "",
        "p": None,
        "name": "",
        "start": orphans[0]["start"],
        "end": None if None in ends else max(ends),
        "a": {},
        "r": orphans[0]["r"],
        "remote": True,
    }


def _start_order(span: Span) -> tuple[int, str]:
    return (span["start"], span["s"])


class _Tree:
    """The run's node spans, each with its parent node (the run span's id at the top)."""

    def __init__(self, run_span: Span, children: Mapping[str, list[Span]]) -> None:
        self.run = run_span
        self.children = children
        self.nodes: list[Span] = []
        self.parent: dict[str, str] = {}  # node span id -> parent node's span id, or the run's
        self.wrappers: list[Span] = []  # workflow-level spans folded into their parent
        self.fill: dict[str, Span] = {}  # call span id -> a call below it that reports usage
        self._seen = {run_span["s"]}
        self._by_id: dict[str, Span] | None = None
        self._types: dict[str, str] = {}
        self.adopt_children(run_span, run_span["s"])

    def type_of(self, span: Span) -> str:
        """The span's node type, read once (the mapping asks several times)."""
        found = self._types.get(span["s"])
        if found is None:
            found = self._types[span["s"]] = _type(span)
        return found

    def adopt_children(self, span: Span, parent_id: str) -> None:
        for child in self.children.get(span["s"], ()):
            self.adopt(child, parent_id)

    def adopt(self, span: Span, parent_id: str) -> None:
        stack = [(span, parent_id)]
        while stack:
            current, parent = stack.pop()
            if current["s"] in self._seen:  # a malformed trace may loop: each span once
                continue
            self._seen.add(current["s"])
            if self.type_of(current) == "workflow" and "traceloop.span.kind" in current["a"]:
                self.wrappers.append(current)  # OpenLLMetry's workflow span: the run again
                stack.extend((c, parent) for c in self.children.get(current["s"], ()))
                continue
            self.nodes.append(current)
            self.parent[current["s"]] = parent
            if self.type_of(current) in _CALL_TYPES:
                self._absorb(current)
                continue
            stack.extend((c, current["s"]) for c in self.children.get(current["s"], ()))

    def _absorb(self, call: Span) -> None:
        """What runs below a model call is the call (its HTTP request, another
        instrumentation's span of it); a nested report fills in usage the call lacks."""
        stack = list(self.children.get(call["s"], ()))
        while stack:
            below = stack.pop()
            if below["s"] in self._seen:
                continue
            self._seen.add(below["s"])
            if call["s"] not in self.fill and _usage(below) != (None, None):
                self.fill[call["s"]] = below
            stack.extend(self.children.get(below["s"], ()))

    def add_call_as_node(self, span: Span) -> None:
        self.nodes.insert(0, span)
        self.parent[span["s"]] = ""  # above the run's own children: nothing
        self._absorb(span)

    def drop_duplicate_calls(self) -> None:
        """A call inside the time of another instrumentation's call with the same tokens is
        that call reported twice (a framework's and a client library's instrumentation):
        keep the outer one. Two identical calls of one instrumentation, one inside the
        other's time, are two calls (parallel branches asking the same)."""
        calls: dict[tuple[int | None, int | None], list[Span]] = defaultdict(list)
        for span in self.nodes:
            usage = _usage(span)
            if self.type_of(span) in _CALL_TYPES and span["end"] is not None and any(usage):
                calls[usage].append(span)
        dropped: set[str] = set()
        for group in calls.values():
            if len(group) < 2:
                continue
            # Start order, longer first: a call is held when a call before it (started no
            # later) ends no earlier. One sweep per instrumentation scope that may hold.
            group.sort(key=lambda s: (s["start"], -s["end"], s["s"]))
            for holder in {s.get("sc") for s in group}:
                reach: int | None = None
                for span in group:
                    scope = span.get("sc")
                    other = holder is None or scope is None or scope != holder
                    if other and reach is not None and reach >= span["end"]:
                        dropped.add(span["s"])
                    if scope == holder:
                        reach = span["end"] if reach is None else max(reach, span["end"])
        if dropped:
            self.nodes = [s for s in self.nodes if s["s"] not in dropped]

    def node_ids(self, ordered: Sequence[Span]) -> dict[str, str]:
        """Node id by span id: explicit ids, else paths of step names from the run."""
        segments: dict[str, str] = {}
        explicit: dict[str, str] = {}
        taken: dict[tuple[str, str], int] = defaultdict(int)
        for span in ordered:  # start order numbers the siblings that share a name
            parent = self.parent[span["s"]]
            name = _step_name(span, self._parent_span(span))
            taken[(parent, name)] += 1
            seen = taken[(parent, name)]
            segments[span["s"]] = name if seen == 1 else f"{name}#{seen}"
            given = text(span["a"].get("flowscope.node_id") or span["a"].get("dify.node_id"))
            if given:
                explicit[span["s"]] = given
        paths: dict[str, str] = {}
        for span_id in segments:
            # Up to the run or to an ancestor already done (a child may start before its
            # parent on skewed clocks: start order alone would not do), then back down.
            chain, current = [], span_id
            while current in segments and current not in paths:
                chain.append(current)
                current = self.parent[current]
            prefix = paths.get(current)
            for node in reversed(chain):
                own = explicit.get(node) or segments[node]
                prefix = own if node in explicit or not prefix else f"{prefix}/{own}"
                paths[node] = prefix
        return {span_id: explicit.get(span_id) or _fit(path) for span_id, path in paths.items()}

    def _parent_span(self, span: Span) -> Span | None:
        if self._by_id is None or len(self._by_id) != len(self.nodes):
            self._by_id = {node["s"]: node for node in self.nodes}
        return self._by_id.get(self.parent.get(span["s"], ""))


def _fit(path: str) -> str:
    """Paths longer than an id keep their end, which names the step."""
    return path if len(path) <= MAX_ID else "…" + path[-(MAX_ID - 1) :]


def _usage(span: Span) -> tuple[int | None, int | None]:
    attributes = span["a"]
    return first_int(attributes, _PROMPT_TOKENS), first_int(attributes, _COMPLETION_TOKENS)


def _step_name(span: Span, parent: Span | None) -> str:
    attributes = span["a"]
    graph_node = text(attributes.get("metadata.langgraph_node"))
    if graph_node and (parent is None or parent["a"].get("metadata.langgraph_node") != graph_node):
        return graph_node  # the LangGraph node's own span; its calls inside get their names
    for key in ("gen_ai.agent.name", "gen_ai.tool.name", "tool.name", "traceloop.entity.name"):
        name = text(attributes.get(key))
        if name:
            return name
    return str(span["name"])


def _type(span: Span) -> str:
    attributes = span["a"]
    explicit = text(attributes.get("flowscope.node_type") or attributes.get("dify.node_type"))
    if explicit:
        return explicit
    kind = attributes.get("openinference.span.kind")
    if isinstance(kind, str) and kind:
        return _OPENINFERENCE_TYPES.get(kind.upper(), kind.lower()[:MAX_ID])
    traceloop = attributes.get("traceloop.span.kind")
    if isinstance(traceloop, str) and traceloop in _TRACELOOP_TYPES:
        return _TRACELOOP_TYPES[traceloop]
    operation = attributes.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation:
        return _GENAI_OPERATION_TYPES.get(operation, operation[:MAX_ID])
    if "gen_ai.tool.name" in attributes or "tool.name" in attributes:
        return "tool"
    if "http.request.method" in attributes or "http.method" in attributes:
        return "http-request"
    if "db.system" in attributes or "db.system.name" in attributes:
        return "database"
    return "span"


def _node(
    span: Span, index: int, ids: Mapping[str, str], tree: _Tree, siblings: _Ended | None
) -> NodeExecutionCreate:
    attributes = span["a"]
    filled = tree.fill.get(span["s"])
    reported = filled["a"] if filled is not None and _usage(span) == (None, None) else attributes
    prompt = first_int(reported, _PROMPT_TOKENS)
    completion = first_int(reported, _COMPLETION_TOKENS)
    total = first_int(reported, _TOTAL_TOKENS)
    if total is None and (prompt is not None or completion is not None):
        total = (prompt or 0) + (completion or 0)
    model = first_text(attributes, _MODEL) or (filled and first_text(filled["a"], _MODEL))
    node_type = tree.type_of(span)
    parent = tree.parent[span["s"]]
    node: NodeExecutionCreate = {
        "id": span["s"],
        "node_id": ids[span["s"]],
        "node_type": node_type,
        "title": span["name"],
        "index": index,
        "status": _status(span),
        "started_at": time_of(span["start"]),
        "finished_at": time_of(span["end"]) if span["end"] else None,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "model_name": model or None,
        "model_provider": first_text(attributes, _PROVIDER),
        "parent_id": parent if parent in ids else None,
        "predecessor_node_id": _predecessor(span, siblings, ids),
        "error": _error(span),
        "input_hash": span.get("h"),
    }
    cost = amount(attributes.get("llm.cost.total"))
    if cost is not None:
        node["cost"] = cost
    if attributes.get("flowscope.cache_hit") is True:
        node["cache_hit"] = True
    return node


# Finished spans under one parent, ordered by (end, span id), with their ends for bisection.
_Ended = tuple[list[tuple[int, str]], list[Span]]


def _ended_siblings(spans: Sequence[Span], parent: Mapping[str, str]) -> dict[str, _Ended]:
    by_parent: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        if span["end"] is not None:
            by_parent[parent[span["s"]]].append(span)
    out: dict[str, _Ended] = {}
    for key, group in by_parent.items():
        group.sort(key=lambda s: (s["end"], s["s"]))
        out[key] = ([(s["end"], s["s"]) for s in group], group)
    return out


def _predecessor(span: Span, siblings: _Ended | None, ids: Mapping[str, str]) -> str | None:
    """The node id of the sibling that ended last at or before this span started (latest
    end, then highest span id): a binary search, not a scan, for traces with wide fan-out."""
    if siblings is None:
        return None
    keys, group = siblings
    position = bisect_right(keys, (span["start"], "\uffff")) - 1
    while position >= 0 and group[position] is span:  # a zero-length span is not its own
        position -= 1
    return None if position < 0 else ids[group[position]["s"]]


def _run(span: Span, tree: _Tree, executions: list[NodeExecutionCreate]) -> RunCreate:
    status = _status(span)
    if status == "succeeded" and any(n["status"] == "failed" for n in executions):
        status = "partial-succeeded"  # the workflow completed although a node failed
    run: RunCreate = {
        "id": span["t"],
        "app_id": _identity(span, _APP) or DEFAULT_APP,
        "workflow_id": _workflow_id(span, tree),
        "workflow_version": _identity(span, _VERSION),
        "status": status,
        "started_at": time_of(span["start"]),
        "finished_at": time_of(span["end"]) if span["end"] else None,
        "error": _error(span),
        "triggered_from": "otlp",
        "inputs_hash": span.get("h"),
        "node_executions": executions,
    }
    return run


def _workflow_id(span: Span, tree: _Tree) -> str:
    """Named where a convention names it (on the run or a workflow span below it); a trace
    of one call, or one whose root continues another service's trace, goes to one workflow
    per service; else the run's own step name."""
    for holder in (span, *tree.wrappers, *tree.nodes):
        found = _identity(holder, _WORKFLOW)
        if found:
            return found
    if _type(span) in _CALL_TYPES or span.get("remote"):
        return _identity(span, _APP) or DEFAULT_APP
    return _step_name(span, None)[:MAX_ID]


def _identity(span: Span, sources: Sequence[tuple[str, str]]) -> str | None:
    for where, key in sources:
        found = text((span["a"] if where == "span" else span["r"]).get(key))
        if found:
            return found
    return None


def _status(span: Span) -> Any:
    if span.get("err") or span["a"].get("error.type"):
        return "failed"
    return "succeeded" if span["end"] else "running"


def _error(span: Span) -> str | None:
    message = span.get("msg")
    if message:
        return str(message)
    error_type = text(span["a"].get("error.type"))
    return error_type if error_type and _status(span) == "failed" else None
