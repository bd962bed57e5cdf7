"""The OTLP spans Dify itself exports for a workflow run, built as each of its trace paths
builds them, from the same Dify rows the import test database holds (dify_fixture).

Followed (langgenius/dify, read in the public source; facts only, no code):
- unified path, `api/core/ops/unified_trace/`: trace_builder.py @ 7953d2f8d468767810cfc7232bd2c21cf16df544
  (span names, canonical ids, node metadata with usage 0 on every node, wrappers),
  hierarchy.py @ 1d250e1d6bd8d56c4e4feb60f5a6bd9bd6e810a9 (a node's parent is its predecessor's
  span through a unique node-id index, else its container, else the run; items under
  `iteration[i]` wrappers), otlp_adapter.py @ a25dce82201d6d5a40446da0c3099bcce8c19bf2
  (attributes, one OTLP/HTTP request per span, random ids), otel.py @
  01ee89a75f1023c6a2e9593bd78a38de5b4d6ab3 (the `otel` provider's gen_ai.* attributes);
- legacy Arize Phoenix provider: api/core/ops/arize_phoenix_trace/arize_phoenix_trace.py @
  03660c19ef214ede229b987df944feaed8f9a258 (a `Dify` root, a `workflow` span with a remote
  parent, flat node spans named by type) and its newer generation,
  api/providers/trace/trace-arize-phoenix/.../arize_phoenix_trace.py @
  012fa723690a16418de668d1975fcc486f860e40 (a root named by the run id, `workflow_<id>`, the
  predecessor tree, wrappers, `dify.node.*`, the workflow span exported last);
- newer export: api/core/ops/otlp_trace.py @ 214fbc5785207148ad66dbd12114b7e56c522a8a and
  provider_export.py @ 001531aff6fbf9051b6a3a059302948143d02c10 (uuid5 ids, one request per
  trace, `dify.*` attributes projected for Phoenix with a `metadata` JSON of them; nodes
  flat under `Workflow`, items under their container).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

from tests.integrations.dify_fixture import Run, node_row, run_row

PATHS = ("unified-otel", "unified-phoenix", "legacy-phoenix", "legacy-phoenix-tree", "export")
# Paths whose node spans carry Dify's graph node ids (the legacy provider names nodes by title).
GRAPH_IDS = frozenset({"unified-otel", "unified-phoenix", "export"})
_KIND = {"llm": "LLM", "knowledge-retrieval": "RETRIEVER", "tool": "TOOL", "agent": "AGENT"}
_CONTAINERS = ("iteration", "loop")


def ns(moment: datetime) -> int:
    """Dify's `int(dt.timestamp() * 1_000_000_000)` on a naive UTC time (a TZ=UTC worker)."""
    return int(moment.replace(tzinfo=UTC).timestamp() * 1_000_000_000)


@dataclass
class Execution:
    """A node row as Dify's trace builders read it."""

    row: dict[str, Any]
    meta: dict[str, Any]
    process: dict[str, Any]
    outputs: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.row["id"])

    @property
    def start(self) -> datetime:
        return self.row["created_at"]  # type: ignore[no-any-return]

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.row["elapsed_time"] or 0)

    @property
    def node_type(self) -> str:
        return str(self.row["node_type"])

    @property
    def name(self) -> str:
        title = self.row["title"]
        return f"{self.node_type}_{title}" if title else self.node_type

    @property
    def failed(self) -> bool:
        return self.row["status"] in ("failed", "exception")

    def usage(self) -> dict[str, Any]:
        usage = self.process.get("usage") or self.outputs.get("usage") or {}
        return usage if isinstance(usage, dict) else {}

    def container(self) -> tuple[str, str, int] | None:
        for kind in _CONTAINERS:
            if self.meta.get(f"{kind}_id") is not None:
                return kind, str(self.meta[f"{kind}_id"]), int(self.meta[f"{kind}_index"])
        return None


def _object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def executions(run: Run) -> list[Execution]:
    out = []
    for index, node in enumerate(run.nodes, start=1):
        predecessor = run.nodes[index - 2].node_id if index > 1 else None
        row = node_row(run, node, index, predecessor)
        out.append(
            Execution(
                row,
                _object(row["execution_metadata"]),
                _object(row["process_data"]),
                _object(row["outputs"]),
            )
        )
    return out


@dataclass
class Plan:
    """What one path sends: spans in export order, grouped into OTLP requests."""

    requests: list[list[ReadableSpan]] = field(default_factory=list)

    def bodies(self) -> list[bytes]:
        return [encode_spans(spans).SerializeToString() for spans in self.requests]


def build(path: str, run: Run) -> Plan:
    builders: dict[str, Callable[[Run], Plan]] = {
        "unified-otel": lambda r: _unified(r, gen_ai=True),
        "unified-phoenix": lambda r: _unified(r, gen_ai=False),
        "legacy-phoenix": _legacy_flat,
        "legacy-phoenix-tree": _legacy_tree,
        "export": _export,
    }
    return builders[path](run)


@contextmanager
def _tracer(resource: Resource, scope: str, ids: IdGenerator | None = None) -> Iterator[Any]:
    memory = InMemorySpanExporter()
    provider = (
        TracerProvider(resource=resource, id_generator=ids)
        if ids
        else TracerProvider(resource=resource)
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield provider.get_tracer(scope), memory
    provider.shutdown()


def _run_metadata(run: Run) -> dict[str, Any]:
    """WorkflowTraceInfo.metadata (ops_trace_manager's workflow_trace), in its key order."""
    row = run_row(run, 1)
    app_id, workflow_id = run.app_workflow
    return {
        "workflow_id": str(workflow_id),
        "conversation_id": None,
        "workflow_run_id": str(run.id),
        "tenant_id": str(run.tenant),
        "elapsed_time": row["elapsed_time"],
        "status": run.status,
        "version": run.version,
        "total_tokens": run.total_tokens,
        "file_list": [],
        "triggered_from": run.triggered_from,
        "user_id": "u-1",
        "app_id": str(app_id),
        "app_name": "Support",
        "workspace_name": "Acme",
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def _status(span: Any, failed: bool, error: str | None, ok: bool = True) -> None:
    if failed:
        span.set_status(Status(StatusCode.ERROR, error or "trace operation failed"))
        span.record_exception(RuntimeError(error or "trace operation failed"))
    elif ok:
        span.set_status(Status(StatusCode.OK))


def _unique_parents(execs: Sequence[Execution]) -> dict[str, str | None]:
    """hierarchy.py: the predecessor's execution through the index of node ids that ran
    once; else the container's; else None (the run)."""
    counts = Counter(e.row["node_id"] for e in execs)
    unique = {e.row["node_id"]: e.id for e in execs if counts[e.row["node_id"]] == 1}
    parents: dict[str, str | None] = {}
    for e in execs:
        parent = unique.get(e.row["predecessor_node_id"] or "")
        if parent is None:
            inside = e.container()
            parent = unique.get(inside[1]) if inside else None
        parents[e.id] = parent if parent != e.id else None
    return parents


def _wrappers(execs: Sequence[Execution]) -> dict[str, tuple[str, str, int]]:
    """Execution id -> (kind, container execution id, index) for items that get a wrapper."""
    counts = Counter(e.row["node_id"] for e in execs)
    unique = {e.row["node_id"]: e.id for e in execs if counts[e.row["node_id"]] == 1}
    out = {}
    for e in execs:
        inside = e.container()
        if inside and unique.get(inside[1]) not in (None, e.id):
            out[e.id] = (inside[0], unique[inside[1]], inside[2])
    return out


def _unified(run: Run, *, gen_ai: bool) -> Plan:
    execs = executions(run)
    by_id = {e.id: e for e in execs}
    parents = _unique_parents(execs)
    wrapped = _wrappers(execs)
    run_id = str(run.id)
    resource = (
        Resource.create({"service.name": "dify"})
        if gen_ai
        else Resource({"openinference.project.name": "support", "model_id": "support"})
    )
    plan = Plan()
    with _tracer(resource, "unified_otel_dify" if gen_ai else "unified_phoenix_support") as (
        tracer,
        memory,
    ):
        # Canonical spans: (canonical id, parent canonical id, builder), emitted by sorted id
        # with parents first.
        canonical: dict[str, tuple[str | None, Callable[[Any], Any]]] = {}

        def common(attributes: dict[str, Any], kind: str, span_id: str, synthetic: bool) -> None:
            attributes.update(
                {
                    "openinference.span.kind": kind,
                    "session.id": run_id,
                    "dify.span.id": span_id,
                    "dify.span.synthetic": synthetic,
                }
            )
            if gen_ai:
                attributes["gen_ai.conversation.id"] = run_id

        def workflow_span(context: Any) -> Any:
            meta = {**_run_metadata(run), "workflow_app_log_id": None, "dify.span.kind": "chain"}
            attributes: dict[str, Any] = {
                "input.value": run.inputs,
                "input.mime_type": "application/json",
                "output.value": _dumps({"answer": "..."}),
                "output.mime_type": "application/json",
                "metadata": _dumps(meta),
            }
            common(attributes, "CHAIN", run_id, False)
            if gen_ai:
                attributes["gen_ai.usage.total_tokens"] = run.total_tokens
            span = tracer.start_span(
                f"workflow_{run_id}",
                context=context,
                start_time=ns(run.started),
                attributes=attributes,
            )
            _status(span, run.status in ("failed",) or bool(run.error), run.error)
            return span, ns(run.started + timedelta(seconds=run.seconds))

        def node_span(e: Execution) -> Callable[[Any], Any]:
            def make(context: Any) -> Any:
                usage = e.usage()
                meta = {
                    **e.meta,
                    "node_id": e.row["node_id"],
                    "node_execution_id": e.id,
                    "node_type": e.node_type,
                    "status": e.row["status"],
                    "model_provider": e.process.get("model_provider"),
                    "model_name": e.process.get("model_name"),
                    "prompt_tokens": usage.get("prompt_tokens", 0),
                    "completion_tokens": usage.get("completion_tokens", 0),
                    "total_tokens": usage.get("total_tokens", 0),
                    "dify.span.kind": _KIND.get(e.node_type, "CHAIN").lower(),
                }
                inputs = (
                    e.process.get("prompts", [])
                    if e.node_type == "llm"
                    else _object(e.row["inputs"])
                )
                attributes: dict[str, Any] = {
                    "input.value": _dumps(inputs),
                    "input.mime_type": "application/json",
                    "output.value": _dumps(e.outputs),
                    "output.mime_type": "application/json",
                    "metadata": _dumps(meta),
                }
                kind = _KIND.get(e.node_type, "CHAIN")
                common(attributes, kind, e.id, False)
                if gen_ai:
                    operation = {"LLM": "chat", "TOOL": "execute_tool", "AGENT": "invoke_agent"}
                    if kind in operation:
                        attributes["gen_ai.operation.name"] = operation[kind]
                    if meta["model_provider"]:
                        attributes["gen_ai.provider.name"] = meta["model_provider"]
                    if meta["model_name"]:
                        attributes["gen_ai.request.model"] = meta["model_name"]
                    attributes["gen_ai.usage.input_tokens"] = meta["prompt_tokens"]
                    attributes["gen_ai.usage.output_tokens"] = meta["completion_tokens"]
                    attributes["gen_ai.usage.total_tokens"] = meta["total_tokens"]
                span = tracer.start_span(
                    e.name, context=context, start_time=ns(e.start), attributes=attributes
                )
                _status(span, e.failed or bool(e.row["error"]), e.row["error"])
                return span, ns(e.end)

            return make

        def wrapper_span(kind: str, container: str, index: int) -> Callable[[Any], Any]:
            items = [by_id[i] for i, w in wrapped.items() if w == (kind, container, index)]

            def make(context: Any) -> Any:
                meta = {
                    "wrapper_type": kind,
                    "wrapper_index": str(index),
                    "container_execution_id": container,
                    "dify.span.kind": "chain",
                }
                attributes: dict[str, Any] = {
                    "input.value": "null",
                    "input.mime_type": "application/json",
                    "output.value": "null",
                    "output.mime_type": "application/json",
                    "metadata": _dumps(meta),
                }
                common(attributes, "CHAIN", f"{kind}:{container}:{index}", True)
                span = tracer.start_span(
                    f"{kind}[{index}]",
                    context=context,
                    start_time=ns(min(i.start for i in items)),
                    attributes=attributes,
                )
                failed = any(i.row["status"] == "failed" for i in items)
                _status(span, failed, "wrapper child failed")
                return span, ns(max(i.end for i in items))

            return make

        canonical[run_id] = (None, workflow_span)
        for kind, container, index in set(wrapped.values()):
            canonical[f"{kind}:{container}:{index}"] = (
                container,
                wrapper_span(kind, container, index),
            )
        for e in execs:
            if e.id in wrapped:
                parent: str | None = "{}:{}:{}".format(*wrapped[e.id])
            else:
                parent = parents[e.id] or run_id
            canonical[e.id] = (parent, node_span(e))
        made: dict[str, Any] = {}

        def emit(span_id: str) -> None:
            if span_id in made:
                return
            parent, make = canonical[span_id]
            if parent is not None:
                emit(parent)
            context = otel_trace.set_span_in_context(made[parent]) if parent else None
            span, end = make(context)
            made[span_id] = span
            span.end(end_time=end)
            plan.requests.append(list(memory.get_finished_spans()))
            memory.clear()

        for span_id in sorted(canonical):
            emit(span_id)
    return plan


def _legacy_node_attributes(e: Execution, run: Run, *, tree: bool) -> dict[str, Any]:
    app_id, _ = run.app_workflow
    meta: dict[str, Any] = {
        **e.meta,
        "node_id": e.id,  # the legacy provider writes the execution id here
        "node_type": e.node_type,
        "node_status": e.row["status"],
        "tenant_id": str(run.tenant),
        "app_id": str(app_id),
        "app_name": e.row["title"],
        "status": e.row["status"],
        "status_message": e.row["error"] or "",
        "level": "ERROR" if e.row["status"] == "failed" else "DEFAULT",
    }
    attributes: dict[str, Any] = {
        "openinference.span.kind": _KIND.get(e.node_type, "CHAIN"),
        "input.value": e.row["inputs"] or "{}",
        "input.mime_type": "application/json",
        "output.value": e.row["outputs"] or "{}",
        "output.mime_type": "application/json",
        "session.id": "",
    }
    usage = e.usage()
    if e.node_type == "llm" and e.process:
        meta.update(
            ls_provider=e.process.get("model_provider"), ls_model_name=e.process.get("model_name")
        )
        attributes["input.value"] = _dumps(e.process.get("prompts", []))
        attributes["llm.provider"] = e.process.get("model_provider") or ""
        attributes["llm.model_name"] = e.process.get("model_name") or ""
        if usage:
            meta.update(
                total_tokens=usage.get("total_tokens", 0),
                prompt_tokens=usage.get("prompt_tokens", 0),
                completion_tokens=usage.get("completion_tokens", 0),
            )
            attributes["llm.token_count.total"] = usage.get("total_tokens", 0)
            attributes["llm.token_count.prompt"] = usage.get("prompt_tokens", 0)
            attributes["llm.token_count.completion"] = usage.get("completion_tokens", 0)
    if tree:
        attributes["dify.node.execution_id"] = e.id
        for key in ("loop_id", "loop_index", "iteration_id", "iteration_index"):
            value = e.meta.get(key)
            attributes[f"dify.node.{key}"] = "" if value is None else value
            meta.setdefault(key, value)
    attributes["metadata"] = _dumps(meta)
    return attributes


def _legacy_workflow_attributes(run: Run) -> dict[str, Any]:
    meta = {
        **_run_metadata(run),
        "created_from": "Dify",
        "trace_id": str(run.id),
        "message_id": None,
        "status_message": run.error or "",
        "level": "ERROR" if run.error else "DEFAULT",
        "trace_entity_type": "workflow",
        "workflow_app_log_id": None,
        "workflow_run_elapsed_time": run.seconds,
        "workflow_run_version": run.version,
        "file_list": "[]",
        "query": "",
    }
    return {
        "openinference.span.kind": "CHAIN",
        "input.value": run.inputs,
        "input.mime_type": "application/json",
        "output.value": _dumps({"answer": "..."}),
        "output.mime_type": "application/json",
        "metadata": _dumps(meta),
        "session.id": "",
    }


_PHOENIX = Resource({"openinference.project.name": "support", "model_id": "support"})


def _legacy_flat(run: Run) -> Plan:
    """The first legacy provider: a `Dify` root ended at once, `workflow` under it through a
    propagated (remote) context, every node span flat under `workflow`, named by type."""
    plan = Plan()
    with _tracer(_PHOENIX, "arize_phoenix_tracer_support") as (tracer, memory):
        root = tracer.start_span(
            "Dify",
            attributes={
                "openinference.span.kind": "CHAIN",
                "dify_project_name": "support",
                "dify_trace_id": str(run.id),
            },
        )
        root.set_status(Status(StatusCode.OK))
        root.end()
        plan.requests.append(list(memory.get_finished_spans()))
        memory.clear()
        remote = otel_trace.set_span_in_context(
            NonRecordingSpan(
                SpanContext(
                    root.get_span_context().trace_id,
                    root.get_span_context().span_id,
                    is_remote=True,
                    trace_flags=TraceFlags(1),
                )
            )
        )
        workflow = tracer.start_span(
            "workflow",
            context=remote,
            start_time=ns(run.started),
            attributes=_legacy_workflow_attributes(run),
        )
        _status(workflow, bool(run.error), run.error, ok=False)
        context = otel_trace.set_span_in_context(workflow)
        for e in executions(run):
            span = tracer.start_span(
                e.node_type,
                context=context,
                start_time=ns(e.start),
                attributes=_legacy_node_attributes(e, run, tree=False),
            )
            _status(span, e.row["status"] == "failed", e.row["error"], ok=False)
            span.end(end_time=ns(e.end))
            plan.requests.append(list(memory.get_finished_spans()))
            memory.clear()
        workflow.end(end_time=ns(run.started + timedelta(seconds=run.seconds)))
        plan.requests.append(list(memory.get_finished_spans()))
    return plan


def _legacy_tree(run: Run) -> Plan:
    """The newer legacy provider: a root named by the run id (a new trace), the workflow
    span, nodes in the predecessor tree with wrappers, the workflow span exported last."""
    execs = executions(run)
    by_id = {e.id: e for e in execs}
    parents = _unique_parents(execs)
    wrapped = _wrappers(execs)
    plan = Plan()
    with _tracer(_PHOENIX, "arize_phoenix_tracer_support") as (tracer, memory):
        root = tracer.start_span(
            str(run.id),
            context=Context(),
            attributes={
                "openinference.span.kind": "CHAIN",
                "dify_project_name": "support",
                "dify_trace_id": str(run.id),
                "input.value": run.inputs,
                "input.mime_type": "application/json",
            },
        )
        root.end()
        plan.requests.append(list(memory.get_finished_spans()))
        memory.clear()
        workflow = tracer.start_span(
            f"workflow_{run.id}",
            context=otel_trace.set_span_in_context(root),
            start_time=ns(run.started),
            attributes=_legacy_workflow_attributes(run),
        )
        _status(workflow, bool(run.error), run.error, ok=False)
        spans: dict[str, Any] = {}
        wrappers: dict[tuple[str, str, int], Any] = {}

        def context_of(e: Execution) -> Any:
            if e.id in wrapped:
                key = wrapped[e.id]
                if key not in wrappers:
                    kind, container, index = key
                    items = [by_id[i] for i, w in wrapped.items() if w == key]
                    wrappers[key] = tracer.start_span(
                        f"{kind}[{index}]",
                        context=otel_trace.set_span_in_context(make(by_id[container])),
                        start_time=ns(min(i.start for i in items)),
                        attributes={
                            "openinference.span.kind": "CHAIN",
                            "metadata": _dumps(
                                {
                                    "synthetic": True,
                                    "wrapper_type": kind,
                                    "wrapper_index": str(index),
                                    "container_execution_id": container,
                                }
                            ),
                            "session.id": "",
                            "dify.wrapper.synthetic": True,
                            "dify.wrapper.type": kind,
                            "dify.wrapper.index": str(index),
                            "dify.wrapper.container_execution_id": container,
                        },
                    )
                return otel_trace.set_span_in_context(wrappers[key])
            parent = parents[e.id]
            holder = make(by_id[parent]) if parent else workflow
            return otel_trace.set_span_in_context(holder)

        def make(e: Execution) -> Any:
            if e.id not in spans:
                span = tracer.start_span(
                    e.name,
                    context=context_of(e),
                    start_time=ns(e.start),
                    attributes=_legacy_node_attributes(e, run, tree=True),
                )
                _status(span, e.failed, e.row["error"], ok=False)
                span.end(end_time=ns(e.end))
                plan.requests.append(list(memory.get_finished_spans()))
                memory.clear()
                spans[e.id] = span
            return spans[e.id]

        for e in execs:
            make(e)
        for key, span in wrappers.items():
            items = [by_id[i] for i, w in wrapped.items() if w == key]
            span.end(end_time=ns(max(i.end for i in items)))
            plan.requests.append(list(memory.get_finished_spans()))
            memory.clear()
        workflow.end(end_time=ns(run.started + timedelta(seconds=run.seconds)))
        plan.requests.append(list(memory.get_finished_spans()))
    return plan


class _Uuid5Ids(IdGenerator):
    """Span and trace ids handed out in the order the spans are started."""

    def __init__(self, trace_id: int, span_ids: list[int]) -> None:
        self.trace_id, self.span_ids = trace_id, list(span_ids)

    def generate_span_id(self) -> int:
        return self.span_ids.pop(0)

    def generate_trace_id(self) -> int:
        return self.trace_id


def _uuid5(text: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, text)


def _export(run: Run) -> Plan:
    """The newer export as the Phoenix destination projects it: one request per trace."""
    execs = executions(run)
    tenant, operation = str(run.tenant), str(run.id)
    app_id, workflow_id = run.app_workflow
    trace_id = int.from_bytes(_uuid5(f"dify:trace:{tenant}:{operation}").bytes, "big")

    def span_id(identity: str) -> int:
        dify_span = str(_uuid5(f"dify:span:{tenant}:{operation}:{identity}"))
        return int.from_bytes(_uuid5(f"{tenant}/{operation}/{dify_span}").bytes[:8], "big")

    order = ["root", *(e.id for e in execs)]
    ids = _Uuid5Ids(trace_id, [span_id(i) for i in order])
    plan = Plan()
    common = {
        "dify.tenant_id": tenant,
        "dify.app_id": str(app_id),
        "dify.workflow.id": str(workflow_id),
        "dify.workflow.version": run.version,
        "dify.workflow.run_id": operation,
        "triggered_from": run.triggered_from,
    }
    usage = {
        "prompt_tokens": sum(n.prompt or 0 for n in run.top_level()),
        "completion_tokens": sum(n.completion or 0 for n in run.top_level()),
        "total_tokens": run.total_tokens,
    }
    with _tracer(Resource({"openinference.project.name": "support"}), "dify.ops", ids) as (
        tracer,
        memory,
    ):
        generic = {
            **common,
            "dify.span.name": "Workflow",
            "dify.span.type": "workflow",
            "workflow_run_status": run.status,
        }
        root = tracer.start_span(
            "Workflow",
            start_time=ns(run.started),
            attributes={
                **generic,
                "metadata": json.dumps(generic, separators=(",", ":")),
                "session.id": operation,
                "input.value": run.inputs,
                "input.mime_type": "application/json",
                "openinference.span.kind": "CHAIN",
                "llm.token_count.prompt": usage["prompt_tokens"],
                "llm.token_count.completion": usage["completion_tokens"],
                "llm.token_count.total": usage["total_tokens"],
            },
        )
        _status(root, run.status == "failed", run.error, ok=False)
        containers = {e.row["node_id"]: e for e in execs if e.node_type in _CONTAINERS}
        made: dict[str, Any] = {}
        for e in execs:
            inside = e.container()
            holder = made.get(containers[inside[1]].id) if inside else None
            node_generic = {
                **common,
                "dify.node.execution_id": e.id,
                "dify.node.id": e.row["node_id"],
                "dify.span.name": e.row["title"],
                "dify.span.type": "llm" if e.node_type == "llm" else "node",
                "node_type": e.node_type,
                "node_status": e.row["status"],
                "predecessor_node_id": e.row["predecessor_node_id"],
                "index": e.row["index"],
                "metadata": e.meta,
                "model_name": e.process.get("model_name"),
                "model_provider": e.process.get("model_provider"),
            }
            attributes: dict[str, Any] = {
                key: value
                for key, value in node_generic.items()
                if isinstance(value, str | int | float | bool)
            }
            attributes["metadata"] = json.dumps(
                {k: v for k, v in node_generic.items() if v is not None}, separators=(",", ":")
            )
            attributes["openinference.span.kind"] = _KIND.get(e.node_type, "CHAIN")
            inputs = (
                e.process.get("prompts", []) if e.node_type == "llm" else _object(e.row["inputs"])
            )
            attributes["input.value"] = json.dumps(inputs, separators=(",", ":"))
            attributes["input.mime_type"] = "application/json"
            if e.row["error"]:
                attributes["error.message"] = e.row["error"]
            node_usage = e.usage()
            if e.node_type == "llm" and node_usage:
                attributes.update(
                    {
                        "llm.model_name": e.process.get("model_name") or "",
                        "llm.provider": e.process.get("model_provider") or "",
                        "llm.token_count.prompt": node_usage.get("prompt_tokens", 0),
                        "llm.token_count.completion": node_usage.get("completion_tokens", 0),
                        "llm.token_count.total": node_usage.get("total_tokens", 0),
                    }
                )
            span = tracer.start_span(
                e.row["title"] or e.node_type,
                context=otel_trace.set_span_in_context(holder or root),
                start_time=ns(e.start),
                attributes=attributes,
            )
            _status(span, e.failed, e.row["error"], ok=False)  # handled_error is ERROR too
            made[e.id] = span
        for e in reversed(execs):
            made[e.id].end(end_time=ns(e.end))
        root.end(end_time=ns(run.started + timedelta(seconds=run.seconds)))
        plan.requests.append(list(memory.get_finished_spans()))
    return plan
