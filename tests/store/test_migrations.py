"""Migrations: one head, and every revision upgrades and downgrades on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from flowscope.store import migrate
from flowscope.store.engine import make_engine
from flowscope.store.tables import metadata


@pytest.fixture(params=["sqlite", "postgres"])
def empty_engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.db'}"
    else:
        url = request.getfixturevalue("scratch_postgres_database")
    engine = make_engine(url)
    if migrate.current_revision(engine):
        migrate.downgrade(engine, "base")
    yield engine
    migrate.downgrade(engine, "base")
    engine.dispose()


def test_single_head() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config(make_engine("sqlite://")))
    assert len(script.get_heads()) == 1


def test_every_revision_up_down_up(empty_engine: Engine) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config(empty_engine))
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert revisions, "no migrations found"
    for revision in revisions:
        migrate.upgrade(empty_engine, revision)
        assert migrate.current_revision(empty_engine) == revision
        migrate.downgrade(empty_engine, "-1")
        migrate.upgrade(empty_engine, revision)
    assert migrate.is_up_to_date(empty_engine)
    migrate.downgrade(empty_engine, "base")
    assert migrate.current_revision(empty_engine) is None
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(empty_engine)
    assert migrate.is_up_to_date(empty_engine)


def test_models_match_migrations(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
