"""A PostgreSQL database laid out like a self-hosted Dify's, with realistic workflow runs.

The DDL is written from the column list of Dify's `workflow_runs` and
`workflow_node_executions` (naive UTC timestamps, JSON kept as text, elapsed times in
seconds), and, since Dify 1.9, `workflow_node_execution_offload` (OFFLOAD_DDL). `RUNS`
defines the data once, with every figure written out: the tests compute what they expect
from these definitions, never through the importer's mapping. The database is a current
Dify's that kept its older rows: legacy retry rows (one row per failed attempt, before 1.9)
beside rows updated in place (1.9 and later) and offloaded ones.

Dify's source followed (langgenius/dify; facts only, no code):
- api/migrations/versions/2025_08_21_1559-b45e25c2d166_add_workflownodeexecutionoffload.py
  @ 2fd337e6109933c839e9bf062782932f02cbe356: the offload table; api/models/workflow.py
  (`WorkflowNodeExecutionOffload`: `node_execution_id` is `workflow_node_executions.id`,
  `type` one of inputs, process_data, outputs).
- api/core/repositories/sqlalchemy_workflow_node_execution_write_repository.py
  @ 84b4e4afc2988951edbbc2ac90b433d799921f25: a value over the truncation budget is stored
  whole in a file, an offload row points to it, and the row keeps a truncated copy (values
  past the budget become "..."); `execution_metadata` is never truncated.
- api/core/app/workflow/layers/persistence.py @ 03cbdbe355606eb186ebffb518f5db58216f3df9 and
  api/core/app/workflow/retry_history.py @ 64374c2acdefb555df2bfda354c533be36452fe3: one row
  per node execution, updated in place on every retry (status `retry`, the attempt's error)
  and at the end; the error is only overwritten by a new one, so a row that succeeded after
  retries keeps the last retry's error text; from Dify 1.16 every failed attempt is appended
  to `process_data["__dify_retry_history"]` (retry_index, inputs, process_data, outputs,
  error, elapsed_time, execution_metadata, created_at, finished_at in epoch seconds).
- langgenius/graphon src/graphon/nodes/llm/llm_utils.py
  @ 3d14fc965e15194003cbcb3c72e7f13a83304a3b (`build_model_identity_inputs`, called by the
  llm, parameter-extractor and question-classifier nodes): a current LLM node puts
  `model_provider` and `model_name` in its inputs too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

import psycopg

from tests.conftest import _libpq, new_postgres_database

DDL = """
CREATE TABLE workflow_runs (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    app_id uuid NOT NULL,
    sequence_number integer NOT NULL,
    workflow_id uuid NOT NULL,
    type varchar(255) NOT NULL,
    triggered_from varchar(255) NOT NULL,
    version varchar(255) NOT NULL,
    graph text,
    inputs text,
    status varchar(255) NOT NULL,
    outputs text,
    error text,
    elapsed_time double precision NOT NULL DEFAULT 0,
    total_tokens bigint NOT NULL DEFAULT 0,
    total_steps integer DEFAULT 0,
    created_by_role varchar(255) NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamp NOT NULL,
    finished_at timestamp,
    exceptions_count integer DEFAULT 0
);
CREATE INDEX workflow_runs_created_at_id ON workflow_runs (created_at, id);
CREATE TABLE workflow_node_executions (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    app_id uuid NOT NULL,
    workflow_id uuid NOT NULL,
    triggered_from varchar(255) NOT NULL,
    workflow_run_id uuid,
    index integer NOT NULL,
    predecessor_node_id varchar(255),
    node_execution_id varchar(255),
    node_id varchar(255) NOT NULL,
    node_type varchar(255) NOT NULL,
    title varchar(255) NOT NULL,
    inputs text,
    process_data text,
    outputs text,
    status varchar(255) NOT NULL,
    error text,
    elapsed_time double precision NOT NULL DEFAULT 0,
    execution_metadata text,
    created_at timestamp NOT NULL,
    created_by_role varchar(255) NOT NULL,
    created_by uuid NOT NULL,
    finished_at timestamp
);
CREATE INDEX workflow_node_executions_run ON workflow_node_executions (workflow_run_id);
"""
# Dify 1.9+ (migration b45e25c2d166, see the module docstring). The id's server default,
# uuidv7(), is a function Dify's migrations create (built in from PostgreSQL 18 only): left
# out, the fixture writes its ids.
OFFLOAD_DDL = """
CREATE TABLE workflow_node_execution_offload (
    id uuid NOT NULL,
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    tenant_id uuid NOT NULL,
    app_id uuid NOT NULL,
    node_execution_id uuid,
    type varchar(20) NOT NULL,
    file_id uuid NOT NULL,
    CONSTRAINT workflow_node_execution_offload_pkey PRIMARY KEY (id),
    CONSTRAINT workflow_node_execution_offload_node_execution_id_key
        UNIQUE (node_execution_id, type)
);
"""

_NS = UUID("6f1d2c3b-0000-4000-8000-00000000d1f7")
TENANT_A = uuid5(_NS, "tenant-a")
TENANT_B = uuid5(_NS, "tenant-b")
SUPPORT = (uuid5(_NS, "app-support"), uuid5(_NS, "workflow-support"))
RESEARCH = (uuid5(_NS, "app-research"), uuid5(_NS, "workflow-research"))
OTHER = (uuid5(_NS, "app-other"), uuid5(_NS, "workflow-other"))
ACCOUNT = uuid5(_NS, "account")
T0 = datetime(2026, 11, 20, 9, 0, 0)  # naive UTC, as Dify stores it
VERSION = "2026-11-18 14:02:11.523904"
UNFINISHED = ("pending", "running", "paused")


@dataclass
class Node:
    """One row of workflow_node_executions; times in seconds after the run's start."""

    key: str
    node_type: str
    title: str
    start: float
    seconds: float
    status: str = "succeeded"
    prompt: int | None = None  # outputs.usage split (LLM nodes)
    completion: int | None = None
    tokens: int | None = None  # execution_metadata.total_tokens
    price: str | None = None  # execution_metadata.total_price, a string as Dify writes it
    model: tuple[str, str] | None = None  # process_data (provider, name)
    iteration: tuple[str, int] | None = None  # (container node id, index)
    loop: tuple[str, int] | None = None
    error: str | None = None
    inputs: str | None = None  # raw text overrides (truncated values)
    outputs: str | None = None
    process_data: str | None = None
    # Dify 1.16+: failed attempts kept in process_data["__dify_retry_history"].
    retry_history: int = 0
    # Dify 1.9+: the columns offloaded (a workflow_node_execution_offload row each); the row
    # keeps the truncated copy given in `inputs`, `outputs` or `process_data`.
    offloaded: tuple[str, ...] = ()

    @property
    def node_id(self) -> str:
        return self.key.split("#")[0]

    @property
    def container(self) -> str | None:
        """The iteration or loop node id this execution ran inside."""
        inside = self.iteration or self.loop
        return None if inside is None else inside[0]


@dataclass
class Run:
    key: str
    minute: float  # created_at = T0 + minutes
    seconds: float
    status: str
    total_tokens: int  # Dify's workflow_runs.total_tokens
    nodes: list[Node]
    tenant: UUID = TENANT_A
    app_workflow: tuple[UUID, UUID] = SUPPORT
    version: str = VERSION
    triggered_from: str = "app-run"
    error: str | None = None
    inputs: str = '{"query": "How do I reset my password?", "sys.user_id": "u-1"}'
    exceptions_count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> UUID:
        return uuid5(_NS, f"run/{self.key}")

    @property
    def started(self) -> datetime:
        return T0 + timedelta(minutes=self.minute)

    def node_uuid(self, node: Node) -> UUID:
        return uuid5(_NS, f"node/{self.key}/{node.key}")

    def top_level(self) -> list[Node]:
        """The nodes outside any iteration or loop: their figures add up to the run's."""
        return [n for n in self.nodes if n.container is None]

    def cost(self) -> Decimal:
        return sum((Decimal(n.price) for n in self.top_level() if n.price), Decimal(0))


def llm(key: str, start: float, seconds: float, prompt: int, completion: int, price: str,
        **fields: Any) -> Node:  # fmt: skip
    fields.setdefault("model", ("langgenius/openai/openai", "gpt-4o-mini"))
    return Node(key, "llm", key.split("#")[0].replace("_", " ").title(), start, seconds,
                prompt=prompt, completion=completion, tokens=prompt + completion, price=price,
                **fields)  # fmt: skip


def edge_nodes(end_at: float) -> tuple[Node, Node]:
    return Node("start", "start", "Start", 0.0, 0.01), Node("end", "end", "End", end_at, 0.02)


def _container_run(
    key: str, minute: float, container: Node, step: float, rounds: list[list[Node]], **fields: Any
) -> Run:
    """A run whose iteration or loop `container` ran `rounds` of child nodes, `step` s apart."""
    children = []
    for i, nodes in enumerate(rounds):
        for node in nodes:
            node.start += 0.2 + i * step
            children.append(node)
    start, end = edge_nodes(0.2 + len(rounds) * step)
    nodes = [start, container, *children, end]
    return Run(key, minute, end.start + 0.1, "succeeded", container.tokens or 0, nodes, **fields)


def _iteration_run() -> Run:
    container = Node("iter", "iteration", "Summarize chunks", 0.1, 3.7, tokens=360,
                     price="0.00036")  # fmt: skip
    rounds = [
        [
            Node(f"iter_start#{i}", "iteration-start", "", 0.0, 0.0, iteration=("iter", i)),
            llm(f"summarize#{i}", 0.01, 1.1, 100, 20, "0.00012", iteration=("iter", i)),
        ]
        for i in range(3)
    ]
    return _container_run("iteration", 1, container, 1.2, rounds)


def _loop_run() -> Run:
    container = Node("refine", "loop", "Refine", 0.1, 2.7, tokens=120, price="0.00006")
    rounds = [
        [
            Node(f"loop_start#{i}", "loop-start", "", 0.0, 0.0, loop=("refine", i)),
            llm(f"draft#{i}", 0.01, 1.0, 50, 10, "0.00003", loop=("refine", i)),
            Node(f"check#{i}", "code", "Check draft", 1.02, 0.2, loop=("refine", i)),
        ]
        for i in range(2)
    ]
    return _container_run("loop", 2, container, 1.3, rounds, app_workflow=RESEARCH)


def _runs() -> list[Run]:
    start, end = edge_nodes(5.9)
    plain = Run("plain", 0, 6.0, "succeeded", 2740, [
        start,
        llm("classify", 0.1, 1.5, 900, 40, "0.000159"),
        Node("kb", "knowledge-retrieval", "Knowledge", 1.7, 0.5),
        llm("answer", 2.3, 3.5, 1500, 300, "0.0012"),
        end,
    ])  # fmt: skip
    start, end = edge_nodes(2.0)
    other_tenant = Run("other-tenant", 1.5, 2.1, "succeeded", 110, [
        start, llm("reply", 0.1, 1.8, 100, 10, "0.000055"), end,
    ], tenant=TENANT_B, app_workflow=OTHER)  # fmt: skip
    start, end = edge_nodes(4.0)
    exception = Run("exception", 3, 4.1, "partial-succeeded", 600, [
        start,
        Node("fetch", "http-request", "Fetch page", 0.1, 2.0, status="exception",
             error="HTTP 504: Gateway Timeout"),
        llm("answer", 2.2, 1.7, 500, 100, "0.0003"),
        end,
    ], exceptions_count=1)  # fmt: skip
    start, end = edge_nodes(6.5)
    retried = Run("retry", 4, 6.6, "succeeded", 250, [
        start,
        Node("flaky#1", "llm", "Flaky", 0.1, 0.4, status="retry", error="Rate limit reached"),
        Node("flaky#2", "llm", "Flaky", 1.6, 0.4, status="retry", error="Rate limit reached"),
        llm("flaky#3", 3.1, 3.3, 200, 50, "0.000125"),
        end,
    ], app_workflow=RESEARCH)  # fmt: skip
    start, _ = edge_nodes(0)
    failed = Run("failed", 5, 2.5, "failed", 330, [
        start,
        llm("estimate", 0.1, 1.9, 300, 30, "0.000165"),
        Node("compute", "code", "Compute", 2.1, 0.3, status="failed",
             error="ZeroDivisionError: division by zero"),
    ], version="draft", triggered_from="debugging",
       error="ZeroDivisionError: division by zero")  # fmt: skip
    start, end = edge_nodes(3.2)
    truncated = Run("truncated", 6, 3.3, "succeeded", 700, [
        start,
        Node("story", "llm", "Story", 0.1, 3.0, tokens=700, price="0.0042",
             inputs='{"context": "Chapter one. It was a bright cold day in Apr',
             outputs='{"text": "Once upon a time, in a land far, far aw',
             process_data=json.dumps({"model_mode": "chat", "model_provider": "openai",
                                      "model_name": "gpt-4o"})),
        end,
    ])  # fmt: skip
    # Dify 1.16+: one row updated in place, its failed attempts kept in process data; it
    # succeeded, and its error column still holds the last retry's error.
    start, end = edge_nodes(5.0)
    history = Run("retry-history", 6.2, 5.1, "succeeded", 0, [
        start,
        Node("fetch", "http-request", "Fetch page", 0.1, 4.8,
             error="HTTP 429: Too Many Requests", retry_history=2),
        end,
    ], app_workflow=RESEARCH)  # fmt: skip
    # Dify 1.9 to 1.15: the same, and nothing records that it was retried.
    start, end = edge_nodes(4.5)
    in_place = Run("retry-in-place", 6.4, 4.6, "succeeded", 250, [
        start,
        llm("flaky", 0.1, 4.2, 200, 50, "0.000125", error="Rate limit reached"),
        end,
    ], app_workflow=RESEARCH)  # fmt: skip
    # Dify 1.9+: an LLM node whose process data and outputs were over the truncation budget.
    # The row keeps valid JSON with the keys past the budget as "..." (the usage, and the
    # model in process data); the model is whole in its inputs, the totals in its metadata.
    start, end = edge_nodes(6.2)
    prompt = "Summarize this contract for a customer. Article 1. The parties agree"
    offloaded = Run("offloaded", 6.6, 6.3, "succeeded", 5200, [
        start,
        Node("digest", "llm", "Digest", 0.1, 6.0, tokens=5200, price="0.0031",
             model=("langgenius/openai/openai", "gpt-4o"),
             inputs=json.dumps({"model_provider": "langgenius/openai/openai",
                                "model_name": "gpt-4o"}),
             process_data=json.dumps({
                 "model_mode": "chat", "prompts": [{"role": "user", "text": prompt + "..."}],
                 "usage": "...", "finish_reason": "...", "model_provider": "...",
                 "model_name": "...",
             }),
             outputs=json.dumps({"text": "The contract binds both parti...", "usage": "...",
                                 "finish_reason": "..."}),
             offloaded=("process_data", "outputs")),
        end,
    ])  # fmt: skip
    start, _ = edge_nodes(0)
    running = Run("running", 7, 0.0, "running", 0, [
        start,
        llm("outline", 0.1, 1.4, 400, 80, "0.00024"),
        Node("write", "llm", "Write", 1.6, 0.0, status="pending"),
    ], app_workflow=RESEARCH)  # fmt: skip
    return [plain, _iteration_run(), other_tenant, _loop_run(), exception, retried, failed,
            truncated, history, in_place, offloaded, running]  # fmt: skip


RUNS = _runs()
BY_KEY = {run.key: run for run in RUNS}
# Runs with rows only Dify 1.9+ writes (in place retries, offloaded values).
DIFY_1_9 = frozenset({"retry-history", "retry-in-place", "offloaded"})
RETRY_HISTORY_KEY = "__dify_retry_history"


def finished_running_run() -> Run:
    """The running run as Dify leaves it once it ends: the pending node done, an end node."""
    run = BY_KEY["running"]
    start, outline, _ = run.nodes
    end = Node("end", "end", "End", 4.9, 0.02)
    write = llm("write", 1.6, 3.2, 600, 100, "0.00035")
    return Run(run.key, run.minute, 5.0, "succeeded", 1180, [start, outline, write, end],
               app_workflow=run.app_workflow)  # fmt: skip


def _json(value: Any) -> str:
    return json.dumps(value)


def run_row(run: Run, sequence: int) -> dict[str, Any]:
    app_id, workflow_id = run.app_workflow
    finished = run.status not in UNFINISHED
    return {
        "id": run.id, "tenant_id": run.tenant, "app_id": app_id, "sequence_number": sequence,
        "workflow_id": workflow_id, "type": "workflow", "triggered_from": run.triggered_from,
        "version": run.version, "graph": _json({"nodes": [], "edges": []}), "inputs": run.inputs,
        "status": run.status, "outputs": _json({"answer": "..."}) if finished else None,
        "error": run.error, "elapsed_time": run.seconds if finished else 0,
        "total_tokens": run.total_tokens, "total_steps": len(run.nodes),
        "created_by_role": "account", "created_by": ACCOUNT, "created_at": run.started,
        "finished_at": run.started + timedelta(seconds=run.seconds) if finished else None,
        "exceptions_count": run.exceptions_count,
    }  # fmt: skip


def node_row(run: Run, node: Node, index: int, predecessor: str | None) -> dict[str, Any]:
    app_id, workflow_id = run.app_workflow
    finished = node.status not in UNFINISHED
    started = run.started + timedelta(seconds=node.start)
    usage = None
    if node.prompt is not None and node.completion is not None:
        usage = {"prompt_tokens": node.prompt, "completion_tokens": node.completion,
                 "total_tokens": node.prompt + node.completion, "currency": "USD",
                 "total_price": node.price}  # fmt: skip
    process: dict[str, Any] = {}
    if node.model:
        process.update(model_mode="chat", prompts=[{"role": "user", "text": "hi"}])
        process.update(model_provider=node.model[0], model_name=node.model[1])
    if usage:
        process["usage"] = usage
    if node.retry_history:
        process[RETRY_HISTORY_KEY] = retry_history(run, node)
    meta: dict[str, Any] = {}
    if node.tokens is not None:
        meta["total_tokens"] = node.tokens
    if node.price is not None:
        meta.update(total_price=node.price, currency="USD")
    if node.iteration:
        meta.update(iteration_id=node.iteration[0], iteration_index=node.iteration[1])
    if node.loop:
        meta.update(loop_id=node.loop[0], loop_index=node.loop[1])
    outputs = {"text": f"output of {node.key}", **({"usage": usage} if usage else {})}
    return {
        "id": run.node_uuid(node), "tenant_id": run.tenant, "app_id": app_id,
        "workflow_id": workflow_id, "triggered_from": "workflow-run", "workflow_run_id": run.id,
        "index": index, "predecessor_node_id": predecessor,
        "node_execution_id": str(uuid5(_NS, f"exec/{run.key}/{node.key}")),
        "node_id": node.node_id, "node_type": node.node_type, "title": node.title,
        "inputs": node.inputs or _json({"query": f"input of {node.node_id}"}),
        "process_data": node.process_data or (_json(process) if process else None),
        "outputs": node.outputs or (_json(outputs) if finished else None),
        "status": node.status, "error": node.error,
        "elapsed_time": node.seconds if finished else 0,
        "execution_metadata": _json(meta) if meta else None,
        "created_at": started, "created_by_role": "account", "created_by": ACCOUNT,
        "finished_at": started + timedelta(seconds=node.seconds) if finished else None,
    }  # fmt: skip


def retry_history(run: Run, node: Node) -> list[dict[str, Any]]:
    """The failed attempts Dify 1.16+ appends to the row's process data, one per retry."""
    attempts = []
    for retry_index in range(1, node.retry_history + 1):
        started = run.started + timedelta(seconds=node.start + (retry_index - 1) * 1.5)
        epoch = int(started.replace(tzinfo=UTC).timestamp())
        attempts.append({
            "retry_index": retry_index, "inputs": {"url": "https://example.com/page"},
            "process_data": {}, "outputs": {}, "error": node.error or "failed",
            "elapsed_time": 0.4, "execution_metadata": {},
            "created_at": epoch, "finished_at": epoch + 1,
        })  # fmt: skip
    return attempts


def offload_rows(run: Run, node: Node) -> list[dict[str, Any]]:
    """The node's workflow_node_execution_offload rows (the files they name are not kept)."""
    app_id, _ = run.app_workflow
    return [
        {
            "id": uuid5(_NS, f"offload/{run.key}/{node.key}/{kind}"),
            "created_at": run.started + timedelta(seconds=node.start + node.seconds),
            "tenant_id": run.tenant,
            "app_id": app_id,
            "node_execution_id": run.node_uuid(node),
            "type": kind,
            "file_id": uuid5(_NS, f"upload-file/{run.key}/{node.key}/{kind}"),
        }
        for kind in node.offloaded
    ]


def insert_row(conn: psycopg.Connection[Any], table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(f'"{c}"' for c in row)
    marks = ", ".join(["%s"] * len(row))
    conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))


def insert_run(conn: psycopg.Connection[Any], run: Run, sequence: int) -> None:
    insert_row(conn, "workflow_runs", run_row(run, sequence))
    insert_nodes(conn, run, run.nodes)


def insert_nodes(conn: psycopg.Connection[Any], run: Run, nodes: list[Node]) -> None:
    for node in nodes:
        index = run.nodes.index(node) + 1
        predecessor = run.nodes[index - 2].node_id if index > 1 else None
        insert_row(conn, "workflow_node_executions", node_row(run, node, index, predecessor))
        for row in offload_rows(run, node):
            insert_row(conn, "workflow_node_execution_offload", row)


def _update(conn: psycopg.Connection[Any], table: str, row: dict[str, Any]) -> None:
    """Rewrite the row with `row["id"]` in place, as Dify updates a run or node it finished."""
    columns = ", ".join(f'"{c}" = %s' for c in row)
    conn.execute(f"UPDATE {table} SET {columns} WHERE id = %s", [*row.values(), row["id"]])


def finish_running_run(url: str) -> Run:
    """Update the Dify rows as Dify does when the running run ends; returns its definition:
    the run row and the pending node's row rewritten, an end node's row added."""
    done = finished_running_run()
    _, outline, write, end = done.nodes
    with psycopg.connect(_libpq(url)) as conn:
        _update(conn, "workflow_runs", run_row(done, 9))
        _update(conn, "workflow_node_executions", node_row(done, write, 3, outline.node_id))
        insert_nodes(conn, done, [end])
    return done


def populate(url: str, runs: list[Run] = RUNS, *, offload_table: bool = True) -> None:
    """Dify's tables holding `runs`; without `offload_table`, as Dify before 1.9 had them."""
    with psycopg.connect(_libpq(url)) as conn:
        conn.execute(DDL)
        if offload_table:
            conn.execute(OFFLOAD_DDL)
        for sequence, run in enumerate(runs, start=1):
            insert_run(conn, run, sequence)


@contextmanager
def dify_database() -> Iterator[str]:
    """A fresh PostgreSQL database holding `RUNS` in Dify's layout (SQLAlchemy-style URL)."""
    with new_postgres_database() as url:
        populate(url)
        yield url


def checksum(url: str) -> tuple[str, ...]:
    """A digest of every row of the Dify tables an import reads, to show it changed nothing."""
    tables = ("workflow_runs", "workflow_node_executions", "workflow_node_execution_offload")
    with psycopg.connect(_libpq(url)) as conn:
        return tuple(
            conn.execute(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM {table} t"
            ).fetchone()[0]  # type: ignore[index]
            for table in tables
        )
