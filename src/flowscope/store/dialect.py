"""Every difference between SQLite and PostgreSQL, in one place.

Both databases share the `INSERT ... ON CONFLICT ... DO UPDATE` syntax and `UPDATE ... FROM`,
so the SQL text is common; what differs is the parameter style and how rows are loaded in
bulk: SQLite takes `executemany`, PostgreSQL takes COPY into a staging table followed by one
`INSERT ... SELECT ... ON CONFLICT`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def placeholders(conn: Connection, count: int) -> str:
    mark = "%s" if is_postgres(conn) else "?"
    return ", ".join([mark] * count)


def upsert_sql(
    table: str,
    columns: Sequence[str],
    conflict: Sequence[str],
    update: str,
    *,
    source: str,
) -> str:
    """`INSERT INTO table (columns) <source> ON CONFLICT (conflict) <update>`."""
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) {source} "
        f"ON CONFLICT ({', '.join(conflict)}) {update}"
    )


def bulk_upsert(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    conflict: Sequence[str],
    update: str,
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Insert or update many rows with one statement's plan (rows must not repeat a key)."""
    if not rows:
        return
    if is_postgres(conn) and len(rows) > 64:
        _copy_upsert(conn, table, columns, conflict, update, rows)
        return
    values = f"VALUES ({placeholders(conn, len(columns))})"
    sql = upsert_sql(table, columns, conflict, update, source=values)
    conn.exec_driver_sql(sql, list(rows))


def _copy_upsert(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    conflict: Sequence[str],
    update: str,
    rows: Sequence[tuple[Any, ...]],
) -> None:
    stage = f"_stage_{table}"
    cols = ", ".join(columns)
    # The staging table lives as long as the pooled connection and empties at each commit.
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
        f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    # A second batch in one transaction must not see the first one's rows.
    conn.exec_driver_sql(f"TRUNCATE {stage}")
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(f"COPY {stage} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    conn.exec_driver_sql(
        upsert_sql(table, columns, conflict, update, source=f"SELECT {cols} FROM {stage}")
    )


def insert_ignore(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    conflict: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Insert rows whose key is not there yet; leave existing ones untouched."""
    if rows:
        values = f"VALUES ({placeholders(conn, len(columns))})"
        conn.exec_driver_sql(
            upsert_sql(table, columns, conflict, "DO NOTHING", source=values), list(rows)
        )


def in_list(conn: Connection, values: Sequence[Any]) -> str:
    """`(?, ?, ...)` for an IN clause of len(values) parameters."""
    return f"({placeholders(conn, len(values))})"
