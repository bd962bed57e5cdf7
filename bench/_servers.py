"""Helpers for benchmarks: fresh databases and real `flowscope serve` processes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flowscope import testing
from flowscope.store import migrate
from flowscope.store.engine import make_engine, write_transaction
from flowscope.tenancy.keys import create_key
from flowscope.testing import scratch_postgres_database

POSTGRES_URL = os.environ.get(
    "FLOWSCOPE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """A new, migrated database URL of `kind` ('sqlite' or 'postgres'), removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            _migrate(url)
            yield url
        return
    with scratch_postgres_database(POSTGRES_URL, "flowscope_bench") as url:
        _migrate(url)
        yield url


def _migrate(url: str) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()


def new_key(url: str, role: str = "ingest", tenant: str = "bench") -> str:
    engine = make_engine(url)
    with write_transaction(engine) as conn:
        key = create_key(conn, tenant, "bench", role).key  # type: ignore[arg-type]
    engine.dispose()
    return key


@contextmanager
def running_server(database_url: str, workers: int = 1) -> Iterator[str]:
    """`flowscope serve` in a subprocess; yields its base URL once /healthz answers."""
    args = ["--database-url", database_url, "--workers", str(workers), "--log-level", "warning"]
    with testing.running_server(args) as server:
        yield server.url
