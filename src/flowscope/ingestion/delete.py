"""Removing stored runs: their rows go, and what they added to the rollups is taken back, so
every figure then equals a recomputation without them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from flowscope.rollups.figures import Deltas, contribution
from flowscope.rollups.write import apply_deltas, read_stored_runs
from flowscope.store import dialect

_CHUNK = 500


def delete_runs(conn: Connection, tenant_id: int, run_ids: Sequence[str]) -> int:
    """Delete the tenant's runs with these ids (others' and unknown ids are ignored);
    returns how many were deleted. The caller owns the transaction."""
    pks: list[int] = []
    tenant = dialect.mark(conn)
    for start in range(0, len(run_ids), _CHUNK):
        where, params = dialect.any_of(conn, "run_id", list(run_ids[start : start + _CHUNK]))
        rows = conn.exec_driver_sql(
            f"SELECT id FROM workflow_runs WHERE tenant_id = {tenant} AND {where}",
            (tenant_id, *params),
        )
        pks.extend(pk for (pk,) in rows)
    if not pks:
        return 0
    pks.sort()
    taken_back = Deltas()
    for stored in read_stored_runs(conn, pks).values():
        taken_back.add(stored.run.workflow_pk, contribution(*stored), -1)
    apply_deltas(conn, taken_back.complete())
    for start in range(0, len(pks), _CHUNK):
        chunk = pks[start : start + _CHUNK]
        where, params = dialect.any_of(conn, "run_pk", chunk)
        conn.exec_driver_sql(f"DELETE FROM node_executions WHERE {where}", params)
        where, params = dialect.any_of(conn, "id", chunk)
        conn.exec_driver_sql(f"DELETE FROM workflow_runs WHERE {where}", params)
    return len(pks)
