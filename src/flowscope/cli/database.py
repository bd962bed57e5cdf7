"""Opening the database for a command: clear errors instead of tracebacks."""

from __future__ import annotations

import click
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from flowscope.store import migrate
from flowscope.store.engine import make_engine


def _shown(database_url: str) -> str:
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return database_url


def connect(database_url: str) -> Engine:
    """An engine whose database answers, or a one-line error naming the URL."""
    try:
        engine = make_engine(database_url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (ArgumentError, ValueError) as exc:
        raise click.ClickException(f"bad database URL {_shown(database_url)}: {exc}") from None
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise click.ClickException(
            f"cannot reach the database at {_shown(database_url)}: {reason}"
        ) from None
    return engine


def open_database(database_url: str) -> Engine:
    """The database ready for use: an embedded SQLite one is migrated, PostgreSQL must be."""
    engine = connect(database_url)
    if not migrate.upgrade_if_embedded(engine) and not migrate.is_up_to_date(engine):
        at = migrate.current_revision(engine) or "base (empty)"
        engine.dispose()
        raise click.ClickException(
            f"the database is at revision {at}, not {migrate.head_revision()}: "
            "run 'flowscope db upgrade --database-url ...' first"
        )
    return engine
