"""Cache fixtures: a real Redis, and one cache backend per kind for the contract suite.

Redis comes from FLOWSCOPE_TEST_REDIS_URL (default: the local server, database 15, emptied
before each test). When Redis is unreachable its tests are skipped with the reason, except
under CI=true, where they fail, as PostgreSQL's do.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from flowscope.cache.backends import CacheBackend, open_backend
from flowscope.store.engine import make_engine
from tests.conftest import IN_CI, _libpq

REDIS_URL = os.environ.get("FLOWSCOPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BACKENDS = ["memory", "sqlite", "postgres", "redis"]


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The URL of an empty Redis database."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        reason = f"Redis at {REDIS_URL} unreachable: {exc}"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: Redis tests must run)")
        pytest.skip(reason)
    client.flushdb()
    yield REDIS_URL
    client.close()


@pytest.fixture
def postgres_cache_url(postgres_migrated: str) -> str:
    """The session's migrated PostgreSQL database, without cache entries."""
    with psycopg.connect(_libpq(postgres_migrated), autocommit=True) as conn:
        conn.execute("TRUNCATE cache_entries")
    return postgres_migrated


@pytest.fixture
def sqlite_cache_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite file of the test's own."""
    target = tmp_path / "cache.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def cache_url(backend_kind: str, request: pytest.FixtureRequest) -> str:
    """The URL of an empty backend of each kind (PostgreSQL's opened through `sql://`)."""
    if backend_kind == "memory":
        return "memory://?max_entries=1000"
    if backend_kind == "sqlite":
        return str(request.getfixturevalue("sqlite_cache_url"))
    if backend_kind == "postgres":
        return str(request.getfixturevalue("postgres_cache_url"))
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def backend(backend_kind: str, cache_url: str) -> Iterator[CacheBackend]:
    """An empty backend of each kind, with generous timeouts (tests are not about speed)."""
    if backend_kind == "postgres":
        engine = make_engine(cache_url)
        opened = open_backend("sql://", engine=engine, timeout_s=5)
        yield opened
        opened.close()
        engine.dispose()
        return
    opened = open_backend(cache_url, timeout_s=5)
    yield opened
    opened.close()
