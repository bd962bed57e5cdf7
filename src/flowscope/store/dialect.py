"""Every difference between SQLite and PostgreSQL, in one place.

Both databases share the `INSERT ... ON CONFLICT ... DO UPDATE` syntax and `UPDATE ... FROM`,
so the SQL text is common; what differs is the parameter style and how rows are loaded in
bulk: SQLite takes `executemany`, PostgreSQL takes COPY into a staging table followed by one
`INSERT ... SELECT ... ON CONFLICT`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Engine,
    Float,
    Integer,
    SmallInteger,
    String,
    Text,
)

from flowscope.store.tables import metadata


def ingest_slots(engine: Engine) -> int:
    """How many ingestion requests one server process should work on at once.

    SQLite has one writer: a second batch in the same process would only compete for the GIL
    with the thread holding the write lock and lengthen its turn, so each process takes one
    batch at a time and processes pipeline (one writes while another parses). PostgreSQL
    writes mostly wait on the server with the GIL released, so a few overlap well.
    """
    return 1 if is_sqlite(engine) else 4


def is_postgres(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "postgresql"


def is_sqlite(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "sqlite"


def mark(conn: Connection) -> str:
    """The driver's parameter marker (psycopg's `%s`, sqlite3's `?`)."""
    return "%s" if is_postgres(conn) else "?"


def placeholders(conn: Connection, count: int) -> str:
    return ", ".join([mark(conn)] * count)


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
    rows: Sequence[Sequence[Any]],
    *,
    in_key_order: bool = False,
) -> None:
    """Insert or update many rows with one statement's plan (rows must not repeat a key).

    With `in_key_order`, rows are written in the order of their conflict key (give them
    sorted): transactions that upsert overlapping keys then lock them in the same order and
    cannot deadlock.
    """
    if not rows:
        return
    if is_postgres(conn) and len(rows) > 64:
        order = f" ORDER BY {', '.join(conflict)}" if in_key_order else ""
        _copy_upsert(conn, table, columns, conflict, update, rows, order=order)
        return
    values = f"VALUES ({placeholders(conn, len(columns))})"
    sql = upsert_sql(table, columns, conflict, update, source=values)
    conn.exec_driver_sql(sql, list(rows))


@dataclass(frozen=True, slots=True)
class Upserted:
    """What `upsert_keyed` wrote: the surrogate key of each row, and which rows are new."""

    pks: dict[Any, int]
    inserted: frozenset[Any]


def upsert_keyed(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    key: str,
    update: str,
    rows: Sequence[Sequence[Any]],
    *,
    known: Mapping[Any, int],
    scope: tuple[str, Any],
    pk: str = "id",
) -> Upserted:
    """`bulk_upsert` on the unique key (`scope` column, `key`) of a table with a surrogate
    key `pk`, every row in the one scope given (a tenant): the pk of every row's key, and
    the keys this statement inserted. `known` holds the keys (with their pks) the
    transaction found stored before.

    PostgreSQL returns them from the statement: a row `known` lacks may have been inserted
    by a concurrent transaction a moment ago. SQLite's writers are serialised (BEGIN
    IMMEDIATE), so what the transaction read still holds: the keys it did not know are new.
    """
    at = list(columns).index(key)
    keys = [row[at] for row in rows]
    scope_column, scope_value = scope
    conflict = (scope_column, key)
    pks = dict(known)
    if is_postgres(conn) and rows:
        # xmax is 0 on a row version this statement inserted, non-zero on one it updated.
        returning = f" RETURNING {key}, {pk}, (xmax = 0) AS inserted"
        written = _copy_upsert(conn, table, columns, conflict, update, rows, returning=returning)
        pks.update({found: pk_value for found, pk_value, _ in written})
        inserted = frozenset(found for found, _, was_inserted in written if was_inserted)
    else:
        bulk_upsert(conn, table, columns, conflict, update, rows)
        inserted = frozenset(k for k in keys if k not in known)
    # A row the update's WHERE kept as it was is not returned (PostgreSQL); new ones (SQLite).
    missing = sorted({k for k in keys if k not in pks})
    marker = mark(conn)
    for start in range(0, len(missing), 500):
        where, params = any_of(conn, key, missing[start : start + 500])
        rows_found = conn.exec_driver_sql(
            f"SELECT {key}, {pk} FROM {table} WHERE {scope_column} = {marker} AND {where}",
            (scope_value, *params),
        )
        pks.update({found: pk_value for found, pk_value in rows_found})
    return Upserted(pks, inserted)


def update_many(
    conn: Connection, table: str, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """`UPDATE table SET columns WHERE key = ...` for each row: its values, then its key."""
    if not rows:
        return
    marker = mark(conn)
    assignments = ", ".join(f"{column} = {marker}" for column in columns)
    conn.exec_driver_sql(f"UPDATE {table} SET {assignments} WHERE {key} = {marker}", list(rows))


def _copy_upsert(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    conflict: Sequence[str],
    update: str,
    rows: Sequence[Sequence[Any]],
    *,
    order: str = "",
    returning: str = "",
) -> list[tuple[Any, ...]]:
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
    # Binary COPY is about twice as fast as text COPY, but needs every column's type.
    with raw.cursor() as cur, cur.copy(f"COPY {stage} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_copy_types(table, columns))
        for row in rows:
            copy.write_row(row)
    sql = upsert_sql(table, columns, conflict, update, source=f"SELECT {cols} FROM {stage}{order}")
    if not returning:
        conn.exec_driver_sql(sql)
        return []
    return [tuple(row) for row in conn.exec_driver_sql(sql + returning)]


_PG_TYPES = (
    (SmallInteger, "int2"),
    (BigInteger, "int8"),
    (Integer, "int4"),
    (Float, "float8"),
    (Boolean, "bool"),
    (Text, "text"),
    (String, "varchar"),
)


def _copy_types(table: str, columns: Sequence[str]) -> list[str]:
    described = metadata.tables[table].c
    names = []
    for column in columns:
        sql_type = described[column].type
        names.append(next(name for kind, name in _PG_TYPES if isinstance(sql_type, kind)))
    return names


def json_patch(conn: Connection, old: str, new: str, *, dropped: str) -> str:
    """SQL for JSON object `old` without its key `dropped`, with `new`'s keys over it."""
    if is_postgres(conn):
        return f"((({old})::jsonb - '{dropped}') || ({new})::jsonb)::text"
    return f"json_patch(json_remove({old}, '$.{dropped}'), {new})"


def least(conn: Connection, a: str, b: str) -> str:
    """SQL for the smaller of two nullable values (null only when both are)."""
    return f"LEAST({a}, {b})" if is_postgres(conn) else f"COALESCE(MIN({a}, {b}), {a}, {b})"


def greatest(conn: Connection, a: str, b: str) -> str:
    """SQL for the larger of two nullable values (null only when both are)."""
    return f"GREATEST({a}, {b})" if is_postgres(conn) else f"COALESCE(MAX({a}, {b}), {a}, {b})"


def lock_keys(conn: Connection, keys: Sequence[str]) -> None:
    """Hold a transaction-long lock on each key, in a fixed order, against concurrent writers.

    PostgreSQL: advisory locks on the keys' hashes, taken in ascending order so that two
    transactions never wait on each other in a cycle. SQLite: nothing to do, its writers are
    serialised already.
    """
    if is_postgres(conn) and keys:
        conn.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(h) FROM "
            "(SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(%s::text[]) AS k) AS keys "
            "ORDER BY h",
            (list(keys),),
        )


def limit_statement_time(conn: Connection, milliseconds: int) -> None:
    """Cancel this transaction's statements after `milliseconds` (PostgreSQL); SQLite has no
    such setting and keeps its busy timeout."""
    if is_postgres(conn):
        conn.exec_driver_sql(
            "SELECT set_config('statement_timeout', %s, true)", (f"{milliseconds}ms",)
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


def any_of(conn: Connection, column: str, values: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
    """`column` matching any of `values`: (SQL, parameters).

    PostgreSQL takes one array parameter (`= ANY(%s)`), which plans once whatever the count;
    SQLite takes an `IN (?, ?, ...)` list.
    """
    if is_postgres(conn):
        return f"{column} = ANY(%s)", (list(values),)
    return f"{column} IN ({placeholders(conn, len(values))})", tuple(values)
