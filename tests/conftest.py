"""Shared fixtures: every database test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from FLOWSCOPE_TEST_POSTGRES_URL (default: the local server, trust auth).
Each test session creates its own database and empties the tables before each test. When
PostgreSQL is unreachable its tests are skipped with the reason, except under CI=true, where
they fail: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from flowscope import testing
from flowscope.store import migrate
from flowscope.store.engine import make_engine, write_transaction
from flowscope.store.tables import metadata
from flowscope.tenancy.keys import create_key

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

POSTGRES_URL = os.environ.get(
    "FLOWSCOPE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    try:
        with psycopg.connect(_libpq(POSTGRES_URL), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {make_url(POSTGRES_URL).render_as_string()} unreachable: {exc}"


def require_postgres() -> None:
    reason = postgres_unavailable()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)")
    pytest.skip(reason)


@contextmanager
def new_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL), dropped afterwards."""
    require_postgres()
    with testing.scratch_postgres_database(POSTGRES_URL, "flowscope_test") as url:
        yield url


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The PostgreSQL database shared by this test session's database tests."""
    with new_postgres_database() as url:
        yield url


@pytest.fixture
def scratch_postgres_database() -> Iterator[str]:
    """A PostgreSQL database of the test's own, for tests that reshape the schema."""
    with new_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_migrated(postgres_database: str) -> str:
    engine = make_engine(postgres_database)
    migrate.upgrade(engine)
    engine.dispose()
    return postgres_database


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (faster than migrating every time)."""
    path = tmp_path_factory.mktemp("template") / "flowscope.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _empty_postgres(url: str) -> None:
    tables = ", ".join(t.name for t in metadata.sorted_tables)
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty flowscope database: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "flowscope.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("postgres_migrated")
    _empty_postgres(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


KeyFactory = Callable[..., str]


@pytest.fixture
def make_key(engine: Engine) -> KeyFactory:
    """make_key(role="admin", tenant="acme") -> a new secret key, through the public API."""

    def factory(role: str = "admin", tenant: str = "acme", name: str = "test") -> str:
        with write_transaction(engine) as conn:
            return create_key(conn, tenant, name, role).key  # type: ignore[arg-type]

    return factory


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    """The real app in-process (lifespan included) over the parametrised database."""
    from fastapi.testclient import TestClient

    from flowscope.config import Settings
    from flowscope.server import create_app

    app = create_app(Settings(database_url=db_url, auto_migrate=False))
    with TestClient(app) as test_client:
        yield test_client


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
