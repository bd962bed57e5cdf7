"""Where an import from another system stopped, kept in `import_cursors`.

The cursor is written in the same transaction as the runs it covers: an import killed
midway resumes after the last committed batch, never before it (doubles) or past it (gaps).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from sqlalchemy import Connection, select

from flowscope.store import dialect
from flowscope.store.tables import ImportCursor

_COLUMNS = (
    "tenant_id",
    "source",
    "position_at_us",
    "position_id",
    "unfinished",
    "imported_runs",
    "imported_node_executions",
    "updated_at_us",
)
_UPDATE = "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[2:])


@dataclass(frozen=True, slots=True)
class CursorState:
    """The last imported row's (created_at in UTC microseconds, id), the runs imported while
    unfinished (re-read until they finish), and what the source has brought in so far."""

    position: tuple[int, str] | None = None
    unfinished: tuple[str, ...] = ()
    imported_runs: int = 0
    imported_node_executions: int = 0


def lock_cursor(conn: Connection, tenant_id: int, source: str) -> None:
    """Hold the cursor for this transaction, so two imports of one source take turns."""
    dialect.lock_keys(conn, [f"import_cursor:{tenant_id}:{source}"])


def read_cursor(conn: Connection, tenant_id: int, source: str) -> CursorState:
    """The source's cursor; the start (nothing imported) when there is none yet."""
    row = conn.execute(
        select(
            ImportCursor.position_at_us,
            ImportCursor.position_id,
            ImportCursor.unfinished,
            ImportCursor.imported_runs,
            ImportCursor.imported_node_executions,
        ).where(ImportCursor.tenant_id == tenant_id, ImportCursor.source == source)
    ).first()
    if row is None:
        return CursorState()
    at_us, position_id, unfinished, runs, nodes = row
    position = None if at_us is None or position_id is None else (at_us, position_id)
    return CursorState(position, tuple(orjson.loads(unfinished)), runs, nodes)


def write_cursor(
    conn: Connection, tenant_id: int, source: str, state: CursorState, now_us: int
) -> None:
    at_us, position_id = state.position if state.position is not None else (None, None)
    row = (
        tenant_id,
        source,
        at_us,
        position_id,
        orjson.dumps(list(state.unfinished)).decode(),
        state.imported_runs,
        state.imported_node_executions,
        now_us,
    )
    dialect.bulk_upsert(conn, "import_cursors", _COLUMNS, ("tenant_id", "source"), _UPDATE, [row])
