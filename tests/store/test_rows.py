"""The named row types are the tables' columns: a column added to one and not the other
fails here, not as a silently shifted value."""

from __future__ import annotations

import sqlite3

from flowscope.runs.rows import RunTotals
from flowscope.store.rows import NODE_COLUMNS, RUN_COLUMNS, NodeRow, RunRow, rank_sql, status_rank
from flowscope.store.tables import metadata


def _columns(table: str) -> list[str]:
    """The table's columns, sorted: rows name their columns in every statement, so their
    order is free."""
    return sorted(column.name for column in metadata.tables[table].columns)


def test_a_run_row_is_a_workflow_runs_row_without_its_surrogate_key() -> None:
    assert sorted(RunRow._fields) == [c for c in _columns("workflow_runs") if c != "id"]
    assert RunRow._fields == RUN_COLUMNS


def test_a_node_row_is_a_node_executions_row() -> None:
    assert sorted(NodeRow._fields) == _columns("node_executions")
    assert NodeRow._fields == NODE_COLUMNS


def test_run_totals_are_run_columns() -> None:
    assert set(RunTotals._fields) <= set(RunRow._fields)


def test_the_rank_in_sql_is_the_rank_in_python() -> None:
    db = sqlite3.connect(":memory:")
    for status in ("running", "paused", "succeeded", "failed", "exception", "stopped"):
        (ranked,) = db.execute(f"SELECT {rank_sql('t')} FROM (SELECT ? AS status) AS t", (status,))
        assert ranked == (status_rank(status),), status
