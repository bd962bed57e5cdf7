"""Importing a Dify database's runs into flowscope, batch by batch, resumable.

Each batch is the next runs after the cursor in Dify's (created_at, id) order with all their
node executions; it is mapped (flowscope.integrations.dify_rows), validated run by run (a run
that does not fit is reported and skipped, never stops the import) and written through run
ingestion together with the advanced cursor, in one flowscope transaction. Runs imported
while still running are re-read at the start of every round until they finish, so node
executions that Dify writes after the run row arrive too. Ingestion is idempotent by run id:
a round that finds nothing new writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, select

from flowscope.ingestion.ingest import ingest_runs
from flowscope.integrations.dify_rows import run_from_rows
from flowscope.integrations.dify_source import (
    DifyConnection,
    RunFilter,
    RunRows,
    count_runs_after,
    read_runs_after,
    read_runs_by_id,
    source_key,
)
from flowscope.integrations.import_cursors import (
    CursorState,
    lock_cursor,
    read_cursor,
    write_cursor,
)
from flowscope.problems import IngestRejected
from flowscope.rollups.write import StoredRun, read_stored_runs
from flowscope.runs.pricing import PriceBook
from flowscope.runs.rows import time_problems
from flowscope.schemas.runs import RUN_CREATE, RunCreate
from flowscope.store.engine import read_transaction, write_transaction
from flowscope.store.rows import UNFINISHED
from flowscope.store.tables import WorkflowRun
from flowscope.timeutil import now_us, to_us

DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class SkippedRun:
    """A Dify run left out, and why (it stays out: the cursor moves past it)."""

    run_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class BatchReport:
    """What one committed batch did."""

    rows_read: int  # new Dify runs read, skipped ones included (progress)
    imported_runs: int  # runs that were not in flowscope before
    node_executions: int  # node executions added, new runs' and refreshed runs' alike
    refreshed_runs: int  # runs already stored that changed (an unfinished run that went on)
    skipped: tuple[SkippedRun, ...]
    caught_up: bool  # no newer run is waiting
    # (run id, node execution id) of the truncated node executions of the runs it added or
    # changed: Dify kept only a cut copy of their inputs, outputs or process data.
    truncated: frozenset[tuple[str, str]] = frozenset()


@dataclass
class ImportTotals:
    """The committed work of this process (the cursor holds the all-time counts)."""

    imported_runs: int = 0
    node_executions: int = 0
    refreshed_runs: int = 0
    skipped: list[SkippedRun] = field(default_factory=list)
    truncated: set[tuple[str, str]] = field(default_factory=set)

    @property
    def truncated_node_executions(self) -> int:
        """Truncated node executions written, each once however often its run was."""
        return len(self.truncated)

    def add(self, report: BatchReport) -> None:
        self.imported_runs += report.imported_runs
        self.node_executions += report.node_executions
        self.refreshed_runs += report.refreshed_runs
        self.skipped.extend(report.skipped)
        self.truncated |= report.truncated


class _CursorMoved(Exception):
    """Another import of the same source committed in between: read again from its cursor."""


class DifyImport:
    """Imports one Dify database (optionally one Dify tenant) into one flowscope tenant."""

    def __init__(
        self,
        dify: DifyConnection,
        engine: Engine,
        tenant_id: int,
        *,
        runs: RunFilter | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        prices: PriceBook | None = None,
        on_batch: Callable[[BatchReport], None] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._dify = dify
        self._engine = engine
        self._tenant_id = tenant_id
        self._runs = runs or RunFilter()
        self._batch_size = batch_size
        self._prices = prices or PriceBook()
        self._on_batch = on_batch
        # Unfinished runs as last written: a re-read that finds one unchanged writes nothing
        # (runs Dify leaves "running" forever would otherwise be rewritten every round).
        self._last_written: dict[str, RunCreate] = {}
        self.source = source_key(dify, self._runs.dify_tenant)
        self.totals = ImportTotals()

    def cursor(self) -> CursorState:
        with read_transaction(self._engine) as conn:
            return read_cursor(conn, self._tenant_id, self.source)

    def count_new(self) -> int:
        """How many Dify runs after the cursor pass the filter (for a progress total)."""
        return count_runs_after(self._dify, self.cursor().position, self._runs)

    def catch_up(self) -> None:
        """One round: re-read the unfinished runs, then import batches until none is left."""
        self.refresh_unfinished()
        while not self.import_next_batch().caught_up:
            pass

    def refresh_unfinished(self) -> None:
        """Re-read the runs imported while running or paused, a batch at a time."""
        pending = list(self.cursor().unfinished)
        for start in range(0, len(pending), self._batch_size):
            chunk = pending[start : start + self._batch_size]
            self._retrying(partial(self._refresh, run_ids=chunk))

    def import_next_batch(self) -> BatchReport:
        """Import the next batch of runs after the cursor."""
        return self._retrying(self._next_batch)

    def _retrying(self, step: Callable[[CursorState], BatchReport | None]) -> BatchReport:
        while True:
            try:
                report = step(self.cursor())
            except _CursorMoved:
                continue
            if report is None:  # nothing new or changed: nothing written
                return BatchReport(0, 0, 0, 0, (), caught_up=True)
            self.totals.add(report)
            if self._on_batch is not None:
                self._on_batch(report)
            return report

    def _next_batch(self, expected: CursorState) -> BatchReport | None:
        rows = read_runs_after(self._dify, expected.position, self._runs, self._batch_size)
        if not rows:
            return None
        last = rows[-1][0]
        runs, skipped = _checked_runs(rows)
        return self._commit(
            _Batch(
                expected=expected,
                read=runs,
                write=runs,
                handled=frozenset(),
                position=(to_us(last["created_at"]), str(last["id"])),
                skipped=tuple(skipped),
                rows_read=len(rows),
                caught_up=len(rows) < self._batch_size,
            )
        )

    def _refresh(self, expected: CursorState, run_ids: Sequence[str]) -> BatchReport | None:
        # Another import of the source may have refreshed some of them meanwhile.
        run_ids = [run_id for run_id in run_ids if run_id in expected.unfinished]
        if not run_ids:
            return None
        runs, skipped = _checked_runs(read_runs_by_id(self._dify, run_ids))
        changed = [run for run in runs if self._last_written.get(run["id"]) != run]
        still = {run["id"] for run in runs if run["status"] in UNFINISHED}
        if not changed and not skipped and set(run_ids) <= still:
            return None
        return self._commit(
            _Batch(expected, runs, changed, frozenset(run_ids), None, tuple(skipped), 0, True)
        )

    def _commit(self, batch: _Batch) -> BatchReport:
        """Write the batch and the cursor after it in one transaction. A run that ingestion
        refuses (its id already belongs to another workflow, or it starts after the end
        stored for it) is skipped and the rest written again."""
        while True:
            try:
                added, added_nodes, changed = self._write(batch)
                break
            except IngestRejected as exc:
                batch = batch.without(_rejected(batch.write, exc))
        for run in batch.read:
            if run["status"] in UNFINISHED:
                self._last_written[run["id"]] = run
            else:
                self._last_written.pop(run["id"], None)
        return BatchReport(
            rows_read=batch.rows_read,
            imported_runs=len(added),
            node_executions=added_nodes,
            refreshed_runs=len(changed),
            skipped=batch.skipped,
            caught_up=batch.caught_up,
            truncated=frozenset(
                (run["id"], node["id"])
                for run in batch.write
                if run["id"] in added or run["id"] in changed
                for node in run.get("node_executions", ())
                if node.get("truncated")
            ),
        )

    def _write(self, batch: _Batch) -> tuple[set[str], int, set[str]]:
        """(ids of the runs added, node executions added, ids of the stored runs that
        changed), with the cursor moved past the batch."""
        expected = batch.expected
        with write_transaction(self._engine) as conn:
            lock_cursor(conn, self._tenant_id, self.source)
            if read_cursor(conn, self._tenant_id, self.source) != expected:
                raise _CursorMoved
            run_ids = [run["id"] for run in batch.write]
            before = _stored_runs(conn, self._tenant_id, run_ids)
            if batch.write:
                ingest_runs(conn, self._tenant_id, batch.write, prices=self._prices)
            counts = _stored_node_counts(conn, self._tenant_id, run_ids)
            again = _stored_runs(conn, self._tenant_id, list(before))
            added = counts.keys() - before.keys()
            added_nodes = sum(counts.values()) - sum(len(s.nodes) for s in before.values())
            changed = {
                run_id
                for run_id, stored in before.items()
                if _content(stored) != _content(again[run_id])
            }
            done = batch.handled | {run["id"] for run in batch.read}
            unfinished = [rid for rid in expected.unfinished if rid not in done]
            unfinished += [run["id"] for run in batch.read if run["status"] in UNFINISHED]
            state = CursorState(
                position=batch.position or expected.position,
                unfinished=tuple(dict.fromkeys(unfinished)),
                imported_runs=expected.imported_runs + len(added),
                imported_node_executions=expected.imported_node_executions + added_nodes,
            )
            write_cursor(conn, self._tenant_id, self.source, state, now_us())
        return set(added), added_nodes, changed


@dataclass(frozen=True, slots=True)
class _Batch:
    """What one transaction writes, and where it leaves the cursor."""

    expected: CursorState  # the cursor it was read after: unchanged, or someone else wrote
    read: list[RunCreate]  # the valid runs read; their status decides the unfinished list
    write: list[RunCreate]  # those to ingest (an unfinished run found unchanged is not)
    handled: frozenset[str]  # run ids whose place on the unfinished list this batch decides
    position: tuple[int, str] | None  # the cursor's next position; None: a refresh
    skipped: tuple[SkippedRun, ...]
    rows_read: int
    caught_up: bool

    def without(self, rejected: dict[int, SkippedRun]) -> _Batch:
        """The batch less the runs ingestion rejected (by their place in `write`)."""
        ids = {skipped.run_id for skipped in rejected.values()}
        return replace(
            self,
            read=[run for run in self.read if run["id"] not in ids],
            write=[run for run in self.write if run["id"] not in ids],
            skipped=(*self.skipped, *rejected.values()),
        )


def _checked_runs(rows: RunRows) -> tuple[list[RunCreate], list[SkippedRun]]:
    """The rows as validated runs, and the runs that do not fit with the reason."""
    runs: list[RunCreate] = []
    skipped: list[SkippedRun] = []
    for run_row, node_rows in rows:
        checked = checked_run(run_row, node_rows)
        if isinstance(checked, SkippedRun):
            skipped.append(checked)
        else:
            runs.append(checked)
    return runs, skipped


def checked_run(run_row: dict[str, Any], node_rows: list[dict[str, Any]]) -> RunCreate | SkippedRun:
    """A Dify run as a valid `RunCreate`, or why it cannot be one."""
    run_id = str(run_row.get("id"))
    try:
        raw = run_from_rows(run_row, node_rows)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        return SkippedRun(run_id, f"unreadable row: {exc!r}")
    try:
        run = RUN_CREATE.validate_python(raw)
    except ValidationError as exc:
        return SkippedRun(run_id, _reason(exc))
    backwards = time_problems([run])
    if backwards:
        first = backwards[0]
        return SkippedRun(run_id, f"{'.'.join(map(str, first.in_run))}: {first.message}")
    return run


def _reason(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    shown = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:3])
    return shown + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else "")


def _rejected(runs: Sequence[RunCreate], exc: IngestRejected) -> dict[int, SkippedRun]:
    """The runs an IngestRejected names, by position; re-raised if it names none."""
    rejected = {
        position: SkippedRun(runs[position]["id"], message)
        for position, message in exc.by_run().items()
        if 0 <= position < len(runs)
    }
    if not rejected:
        raise exc
    return rejected


def _stored_runs(conn: Connection, tenant_id: int, run_ids: Sequence[str]) -> dict[str, StoredRun]:
    """The tenant's runs of these ids already stored, with their node rows."""
    pks = _stored_column(conn, tenant_id, run_ids, WorkflowRun.id)
    by_pk = read_stored_runs(conn, sorted(pks.values()))
    return {run_id: by_pk[pk] for run_id, pk in pks.items()}


def _content(stored: StoredRun) -> tuple[object, ...]:
    """What a stored run says, leaving out when it was written."""
    run = stored.run._replace(created_at_us=0, updated_at_us=0)
    nodes = sorted(stored.nodes, key=lambda node: node.id)
    # Details as data: a merge may write the same object with its keys in another order.
    return (run, [(node[:-1], orjson.loads(node.details or "null")) for node in nodes])


def _stored_node_counts(conn: Connection, tenant_id: int, run_ids: Sequence[str]) -> dict[str, int]:
    """run id -> node executions stored, for those of the runs flowscope already has."""
    return _stored_column(conn, tenant_id, run_ids, WorkflowRun.node_count)


def _stored_column(
    conn: Connection, tenant_id: int, run_ids: Sequence[str], column: Any
) -> dict[str, int]:
    """run id -> a column of the tenant's stored runs of these ids."""
    found: dict[str, int] = {}
    for start in range(0, len(run_ids), DEFAULT_BATCH_SIZE):
        chunk = run_ids[start : start + DEFAULT_BATCH_SIZE]
        rows = conn.execute(
            select(WorkflowRun.run_id, column).where(
                WorkflowRun.tenant_id == tenant_id, WorkflowRun.run_id.in_(chunk)
            )
        )
        found.update({run_id: value for run_id, value in rows})
    return found
