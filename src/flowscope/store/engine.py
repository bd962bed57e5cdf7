"""Engines and transactions.

On SQLite: WAL, `synchronous=NORMAL` and a busy timeout, and write transactions start with
`BEGIN IMMEDIATE` so that concurrent writers queue up instead of failing to upgrade a read
lock. Read transactions start with a plain BEGIN and never block writers (WAL).

SQLite has one writer at a time, and a writer that finds the database locked polls with
sleeps of up to 100 ms: with several server workers the database would sit idle between
writes. So writers queue on a lock that wakes the next one at once: a thread lock within a
process and `flock` on `<database>.lock` across processes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: writers of one process still queue on the thread lock
    fcntl = None  # type: ignore[assignment]

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

_WRITE = "flowscope_write"


class WriterQueue:
    """Lets one writer at a time into a SQLite file, waking the next one as soon as it ends."""

    def __init__(self, database: Path) -> None:
        self._thread_lock = threading.Lock()
        self._path = database.with_name(database.name + ".lock")

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self._thread_lock:
            if fcntl is None:
                yield
                return
            with open(self._path, "a+b") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)


_queues: dict[Path, WriterQueue] = {}
_queues_lock = threading.Lock()


def _writer_queue(database: Path) -> WriterQueue:
    key = database.resolve()
    with _queues_lock:
        return _queues.setdefault(key, WriterQueue(key))


def make_engine(database_url: str, *, pool_size: int = 5) -> Engine:
    """An engine for a sqlite:/// or postgresql+psycopg:// URL, tuned for flowscope."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})
        in_memory = url.database in (None, "", ":memory:")
        _tune_sqlite(engine, in_memory=in_memory)
        if not in_memory:
            engine.update_execution_options(
                flowscope_writer_queue=_writer_queue(Path(str(url.database)))
            )
        return engine
    if url.get_backend_name() == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    raise ValueError(
        f"unsupported database URL {url.render_as_string(hide_password=True)!r}: "
        "use sqlite:///path.db or postgresql+psycopg://..."
    )


def _tune_sqlite(engine: Engine, *, in_memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event below decide how transactions start.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # Takes effect only on a new, empty file: larger pages make bulk inserts ~10% faster.
        cur.execute("PRAGMA page_size=16384")
        if not in_memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.close()
        dbapi_conn.create_function("flowscope_hist_add", 2, hist_add, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def hist_add(a: str | None, b: str | None) -> str:
    """Add two JSON objects of counts key by key, dropping zeros: SQLite's twin of the
    `flowscope_hist_add` function that the rollups migration creates on PostgreSQL."""
    total: dict[str, int] = orjson.loads(a) if a else {}
    for key, n in (orjson.loads(b) if b else {}).items():
        n += total.get(key, 0)
        if n:
            total[key] = n
        else:
            total.pop(key, None)
    return orjson.dumps(total).decode()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction that writes: committed on success, rolled back on any error."""
    queue: WriterQueue | None = engine.get_execution_options().get("flowscope_writer_queue")
    if queue is None:
        with engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn
        return
    with queue.turn(), engine.connect() as conn:
        conn = conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """One read-only transaction (a consistent snapshot)."""
    with engine.connect() as conn, conn.begin():
        yield conn
