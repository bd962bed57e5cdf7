"""Schema migrations (Alembic, shipped inside the package so `pip install` users can migrate)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from flowscope.store import dialect
from flowscope.store.engine import make_engine


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "flowscope.store:migrations")
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str = "-1") -> None:
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    script = ScriptDirectory.from_config(alembic_config(make_engine("sqlite://")))
    return script.get_current_head()


def is_up_to_date(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def upgrade_if_embedded(engine: Engine) -> bool:
    """Bring an embedded SQLite database to head; True if this database is embedded.

    The embedded default is migrated wherever it is opened (server, CLI, SDK). PostgreSQL is
    migrated only by `flowscope db upgrade`, so several servers never race to migrate it.
    """
    if not dialect.is_sqlite(engine):
        return False
    if not is_up_to_date(engine):
        upgrade(engine)
    return True
