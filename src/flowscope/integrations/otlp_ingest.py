"""Spans received over OTLP stored by (trace, span) id and turned into runs.

Every request rebuilds the runs of the traces it touches from all their stored spans and
writes them through run ingestion (flowscope.ingestion.ingest), which is idempotent: a span sent
twice, or a trace sent in several requests in any order, ends as the same run. Traces are
locked for the transaction, so two requests carrying parts of one trace cannot each miss
the other's spans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from flowscope.ingestion.delete import delete_runs
from flowscope.ingestion.ingest import PreparedBatch, prepare_batch, write_batch
from flowscope.integrations.otlp_duplicates import (
    HOLD_WINDOW_US,
    calls_of,
    duplicates,
    read_calls,
    write_calls,
)
from flowscope.integrations.otlp_mapping import map_trace
from flowscope.problems import IngestRejected
from flowscope.runs.pricing import PriceBook
from flowscope.schemas.runs import RunCreate
from flowscope.store import dialect
from flowscope.store.engine import read_transaction, write_transaction
from flowscope.timeutil import now_us as _now_us

_SPAN_COLUMNS = ("tenant_id", "trace_id", "span_id", "parent_span_id", "span", "received_at_us")
_SPAN_UPDATE = (
    "DO UPDATE SET parent_span_id = excluded.parent_span_id, span = excluded.span, "
    "received_at_us = excluded.received_at_us"
)
_CHUNK = 500


@dataclass
class SpanIngestResult:
    accepted_spans: int = 0
    rejected_spans: int = 0
    runs_written: int = 0
    traces_waiting: int = 0  # traces whose run span has not arrived yet
    duplicate_traces: int = 0  # traces that only repeat a call another trace reports
    errors: list[str] = field(default_factory=list)


def ingest_spans(
    engine: Engine,
    tenant_id: int,
    records: Sequence[dict[str, Any]],
    *,
    prices: PriceBook,
    now_us: int | None = None,
    settle: bool = False,
) -> SpanIngestResult:
    """Store the spans and write the runs of their traces, in one transaction.

    With `settle`, the records are spans already stored, of traces whose root will not come
    (`settle_rootless_traces`): their runs are written, the spans not again.

    The runs are built and prepared before the write transaction, from the spans stored
    then; inside it, under the traces' locks, the stored span ids are checked again and the
    runs rebuilt only if another request added spans meanwhile. Writers (SQLite has one)
    thus wait for each other only to run SQL.
    """
    incoming: dict[str, dict[str, dict[str, Any]]] = {}
    for record in records:  # the last copy of a span id wins
        incoming.setdefault(record["t"], {})[record["s"]] = record
    result = SpanIngestResult()
    if not incoming:
        return result
    now = _now_us() if now_us is None else now_us
    trace_ids = sorted(incoming)
    rows = {
        trace_id: [
            (tenant_id, trace_id, span_id, span["p"], orjson.dumps(span).decode(), now)
            for span_id, span in sorted(incoming[trace_id].items())
        ]
        for trace_id in trace_ids
    }
    with read_transaction(engine) as conn:
        stored = _read_spans(conn, tenant_id, trace_ids)
    seen = _span_ids(stored)
    mapped = _map_traces(stored, incoming, settle=settle)
    try:
        prepared: PreparedBatch | None = prepare_batch(mapped.runs, prices=prices)
    except IngestRejected:
        prepared = None  # found again, run by run, in the transaction
    with write_transaction(engine) as conn:
        dialect.lock_keys(conn, [f"otlp:{tenant_id}:{t}" for t in trace_ids])
        if prepared is None or _stored_span_ids(conn, tenant_id, trace_ids) != seen:
            mapped = _map_traces(_read_spans(conn, tenant_id, trace_ids), incoming, settle=settle)
            prepared = None
        runs, prepared = _drop_duplicate_calls(conn, tenant_id, mapped, prepared, now, result)
        rejected = _write_runs(conn, tenant_id, runs, prepared, prices, now, result)
        dialect.bulk_upsert(
            conn,
            "otlp_spans",
            _SPAN_COLUMNS,
            ("tenant_id", "trace_id", "span_id"),
            _SPAN_UPDATE,
            [
                row
                for trace_id in trace_ids
                if trace_id not in rejected and not settle
                for row in rows[trace_id]
            ],
            in_key_order=True,
        )
    result.traces_waiting = mapped.waiting
    result.rejected_spans = sum(len(incoming[t]) for t in rejected)
    result.accepted_spans = len(records) - result.rejected_spans
    return result


Traces = dict[str, dict[str, dict[str, Any]]]


@dataclass
class _Mapped:
    """The runs of some traces, how many traces still wait for their run span, and each
    span's instrumentation scope by span id."""

    runs: list[RunCreate]
    waiting: int
    scopes: dict[str, str | None]


def _map_traces(stored: Traces, incoming: Traces, *, settle: bool) -> _Mapped:
    """The runs of the traces: their stored spans with the incoming ones over them."""
    mapped = _Mapped([], 0, {})
    for trace_id in sorted(incoming):
        spans = {**stored.get(trace_id, {}), **incoming[trace_id]}
        run = map_trace(list(spans.values()), settle=settle)
        if run is None:
            mapped.waiting += 1
            continue
        mapped.runs.append(run)
        mapped.scopes.update((span_id, span.get("sc")) for span_id, span in spans.items())
    return mapped


def _drop_duplicate_calls(
    conn: Connection,
    tenant_id: int,
    mapped: _Mapped,
    prepared: PreparedBatch | None,
    now: int,
    result: SpanIngestResult,
) -> tuple[list[RunCreate], PreparedBatch | None]:
    """Leave out the runs of traces that only repeat a call another trace reports, remove
    such runs written before their holder arrived, and remember this batch's calls."""
    runs = mapped.runs
    calls = [call for run in runs for call in calls_of(run, mapped.scopes)]
    if not calls:
        return runs, prepared
    # No lock on the calls: both reports of a call come from one process, whose exporter
    # sends its batches one after another, so neither transaction misses the other's rows.
    keys = sorted({call.call_key for call in calls})
    stored = read_calls(
        conn,
        tenant_id,
        keys,
        min(call.start_us for call in calls) - HOLD_WINDOW_US,
        max(call.end_us for call in calls),
    )
    write_calls(conn, tenant_id, calls, now)
    repeated = duplicates(calls, stored)
    if not repeated:
        return runs, prepared
    in_batch = {run["id"] for run in runs}
    delete_runs(conn, tenant_id, sorted(repeated - in_batch))
    kept = [run for run in runs if run["id"] not in repeated]
    result.duplicate_traces = len(repeated & in_batch)
    return kept, None if len(kept) != len(runs) else prepared


def _span_ids(traces: Traces) -> dict[str, set[str]]:
    return {trace_id: set(spans) for trace_id, spans in traces.items() if spans}


def _write_runs(
    conn: Connection,
    tenant_id: int,
    runs: list[RunCreate],
    prepared: PreparedBatch | None,
    prices: PriceBook,
    now: int,
    result: SpanIngestResult,
) -> set[str]:
    """Write the runs; a run that ingestion refuses (it moved workflow, or it starts after
    the end stored for it) is left out with its spans. Returns the refused trace ids."""
    refused: set[str] = set()
    while runs:
        try:
            batch = prepared or prepare_batch(runs, prices=prices)
            write_batch(conn, tenant_id, batch, now_us=now)
        except IngestRejected as exc:
            by_run = exc.by_run() or dict.fromkeys(range(len(runs)), str(exc))
            positions = set(by_run)
            for position, message in sorted(by_run.items()):
                trace_id = runs[position]["id"]
                refused.add(trace_id)
                if len(result.errors) < 5:
                    result.errors.append(f"trace {trace_id}: {message}")
            runs = [run for i, run in enumerate(runs) if i not in positions]
            prepared = None
            continue
        result.runs_written = len(runs)
        break
    return refused


def _read_spans(conn: Connection, tenant_id: int, trace_ids: Sequence[str]) -> Traces:
    """The stored spans of these traces, by trace id and span id."""
    traces: Traces = {}
    for start in range(0, len(trace_ids), _CHUNK):
        where, params = dialect.any_of(conn, "trace_id", trace_ids[start : start + _CHUNK])
        tenant = dialect.mark(conn)
        rows = conn.exec_driver_sql(
            "SELECT trace_id, span_id, span FROM otlp_spans "
            f"WHERE tenant_id = {tenant} AND {where}",
            (tenant_id, *params),
        )
        for trace_id, span_id, span in rows:
            traces.setdefault(trace_id, {})[span_id] = orjson.loads(span)
    return traces


def _stored_span_ids(
    conn: Connection, tenant_id: int, trace_ids: Sequence[str]
) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = {}
    tenant = dialect.mark(conn)
    for start in range(0, len(trace_ids), _CHUNK):
        where, params = dialect.any_of(conn, "trace_id", trace_ids[start : start + _CHUNK])
        rows = conn.exec_driver_sql(
            f"SELECT trace_id, span_id FROM otlp_spans WHERE tenant_id = {tenant} AND {where}",
            (tenant_id, *params),
        )
        for trace_id, span_id in rows:
            ids.setdefault(trace_id, set()).add(span_id)
    return ids


def settle_rootless_traces(
    engine: Engine, *, prices: PriceBook, quiet_since_us: int, limit: int = 1000
) -> int:
    """Traces still without a run whose last span arrived before `quiet_since_us`: their
    root is in a service that does not export here (an older exporter does not flag such
    a parent as remote). Each becomes a run of its service's workflow, the spans whose
    parent is absent standing in for the root. Returns how many runs were written."""
    with read_transaction(engine) as conn:
        mark = dialect.mark(conn)
        # Rootless (every span has a parent) and without a run: traces with a root either
        # have their run or are waiting for the rest of Dify's export, or repeat a call.
        waiting = conn.exec_driver_sql(
            "SELECT s.tenant_id, s.trace_id FROM otlp_spans s "
            "GROUP BY s.tenant_id, s.trace_id "
            f"HAVING MAX(s.received_at_us) < {mark} "
            "AND SUM(CASE WHEN s.parent_span_id IS NULL THEN 1 ELSE 0 END) = 0 "
            "AND NOT EXISTS (SELECT 1 FROM workflow_runs r "
            "WHERE r.tenant_id = s.tenant_id AND r.run_id = s.trace_id) "
            f"ORDER BY s.tenant_id, s.trace_id LIMIT {mark}",
            (quiet_since_us, limit),
        ).all()
        by_tenant: dict[int, list[str]] = {}
        for tenant_id, trace_id in waiting:
            by_tenant.setdefault(tenant_id, []).append(trace_id)
        stored = {t: _read_spans(conn, t, ids) for t, ids in by_tenant.items()}
    written = 0
    for tenant_id, traces in stored.items():
        records = [span for spans in traces.values() for span in spans.values()]
        written += ingest_spans(engine, tenant_id, records, prices=prices, settle=True).runs_written
    return written


def prune_spans(conn: Connection, received_before_us: int) -> int:
    """Forget spans received before the cutoff (their runs stay); returns how many."""
    cutoff = dialect.mark(conn)
    result = conn.exec_driver_sql(
        f"DELETE FROM otlp_spans WHERE received_at_us < {cutoff}", (received_before_us,)
    )
    return int(result.rowcount or 0)
