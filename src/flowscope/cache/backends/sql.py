"""Cache entries in a SQL table (`cache_entries`): the flowscope database or another one.

Lookups skip expired rows and `cleanup` deletes them. Writes are one atomic
`INSERT ... ON CONFLICT DO UPDATE`. On PostgreSQL every cache transaction bounds itself with
a local `statement_timeout`, so a slow cache never holds a request for long; SQLite keeps
the engine's busy timeout (writers queue; FaultTolerantBackend's deadline bounds the wait).

Cross-process single-flight leases are rows of `cache_leases` with an expiry: taken by an
upsert that only succeeds when no live lease holds the key, released by deleting the row, and
harmless when their holder dies (they expire). Any process may release one, so a lease taken
during one HTTP request can end with the store of another, on another server process.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine

from flowscope.cache.backends.base import Entry, selector
from flowscope.store import dialect
from flowscope.store.engine import read_transaction, write_transaction
from flowscope.timeutil import now_us as _now_us

TABLE = "cache_entries"
_FIELDS = (
    "app_id",
    "workflow_id",
    "node_id",
    "node_type",
    "value",
    "size",
    "stored_at_us",
    "expires_at_us",
    "elapsed_ms",
    "cost",
)
_COLUMNS = ("tenant_id", "key", *_FIELDS)


class SQLBackend:
    """The cache over an engine made by flowscope.store.engine.make_engine (migrated)."""

    def __init__(self, engine: Engine, *, owns_engine: bool = False, timeout_s: float = 0.05):
        self.engine = engine
        self._owns_engine = owns_engine
        self._timeout_ms = max(1, round(timeout_s * 1000))

    def get(self, tenant_id: int, key: str) -> Entry | None:
        with read_transaction(self.engine) as conn:
            self._bound(conn)
            row = conn.exec_driver_sql(
                f"SELECT {', '.join(_FIELDS)} FROM {TABLE} "
                f"WHERE tenant_id = {_mark(conn)} AND key = {_mark(conn)} "
                f"AND expires_at_us > {_mark(conn)}",
                (tenant_id, key, _now_us()),
            ).first()
        if row is None:
            return None
        app_id, workflow_id, node_id, node_type, value, _size, stored, expires, elapsed, cost = row
        return Entry(
            value=bytes(value),
            stored_at_us=stored,
            expires_at_us=expires,
            app_id=app_id,
            workflow_id=workflow_id,
            node_id=node_id,
            node_type=node_type,
            elapsed_ms=elapsed,
            cost=cost,
        )

    def set(self, tenant_id: int, key: str, entry: Entry) -> None:
        update = "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _FIELDS)
        row = (
            tenant_id,
            key,
            entry.app_id,
            entry.workflow_id,
            entry.node_id,
            entry.node_type,
            entry.value,
            entry.size,
            entry.stored_at_us,
            entry.expires_at_us,
            entry.elapsed_ms,
            entry.cost,
        )
        with write_transaction(self.engine) as conn:
            self._bound(conn)
            values = f"VALUES ({dialect.placeholders(conn, len(_COLUMNS))})"
            sql = dialect.upsert_sql(TABLE, _COLUMNS, ("tenant_id", "key"), update, source=values)
            conn.exec_driver_sql(sql, row)

    def invalidate(
        self,
        tenant_id: int,
        *,
        app_id: str,
        workflow_id: str,
        node_type: str | None = None,
        node_id: str | None = None,
        key: str | None = None,
        all: bool = False,
    ) -> int:
        column, value = selector(node_type, node_id, key, all)
        with write_transaction(self.engine) as conn:
            mark = _mark(conn)
            sql = (
                f"DELETE FROM {TABLE} WHERE tenant_id = {mark} "
                f"AND app_id = {mark} AND workflow_id = {mark}"
            )
            params: tuple[object, ...] = (tenant_id, app_id, workflow_id)
            if column != "all":
                sql += f" AND {column} = {mark}"
                params += (value,)
            return conn.exec_driver_sql(sql, params).rowcount

    def cleanup(self, now_us: int | None = None) -> int:
        now = _now_us() if now_us is None else now_us
        with write_transaction(self.engine) as conn:
            mark = _mark(conn)
            conn.exec_driver_sql(f"DELETE FROM cache_leases WHERE expires_at_us <= {mark}", (now,))
            sql = f"DELETE FROM {TABLE} WHERE expires_at_us <= {mark}"
            return conn.exec_driver_sql(sql, (now,)).rowcount

    def stats(self, tenant_id: int, app_id: str, workflow_id: str) -> tuple[int, int]:
        with read_transaction(self.engine) as conn:
            mark = _mark(conn)
            count, size = conn.exec_driver_sql(
                f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM {TABLE} WHERE tenant_id = {mark} "
                f"AND app_id = {mark} AND workflow_id = {mark} AND expires_at_us > {mark}",
                (tenant_id, app_id, workflow_id, _now_us()),
            ).one()
        return int(count), int(size)

    def acquire_lease(self, tenant_id: int, key: str, ttl_ms: int) -> bool:
        """True when no live lease held the key and this call took it for `ttl_ms`."""
        now = _now_us()
        with write_transaction(self.engine) as conn:
            self._bound(conn)
            values = dialect.placeholders(conn, 3)
            taken = conn.exec_driver_sql(
                f"INSERT INTO cache_leases (tenant_id, key, expires_at_us) VALUES ({values}) "
                "ON CONFLICT (tenant_id, key) DO UPDATE SET expires_at_us = excluded.expires_at_us "
                f"WHERE cache_leases.expires_at_us <= {_mark(conn)} RETURNING 1",
                (tenant_id, key, now + max(1, ttl_ms) * 1000, now),
            ).first()
        return taken is not None

    def release_lease(self, tenant_id: int, key: str) -> None:
        with write_transaction(self.engine) as conn:
            self._bound(conn)
            mark = _mark(conn)
            conn.exec_driver_sql(
                f"DELETE FROM cache_leases WHERE tenant_id = {mark} AND key = {mark}",
                (tenant_id, key),
            )

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def _bound(self, conn: Connection) -> None:
        dialect.limit_statement_time(conn, self._timeout_ms)


def _mark(conn: Connection) -> str:
    return dialect.mark(conn)
