"""`flowscope db`: schema migrations."""

from __future__ import annotations

import click

from flowscope.cli.database import connect
from flowscope.cli.options import database_url_option
from flowscope.store import migrate


@click.group()
def db() -> None:
    """Create and migrate the flowscope database."""


@db.command()
@database_url_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade(database_url: str, revision: str) -> None:
    """Apply migrations up to REVISION (creates the tables on a new database)."""
    engine = connect(database_url)
    migrate.upgrade(engine, revision)
    click.echo(f"database at revision {migrate.current_revision(engine)}")


@db.command()
@database_url_option
@click.option(
    "--revision", default="-1", show_default=True, help="Target revision ('base' = empty)."
)
def downgrade(database_url: str, revision: str) -> None:
    """Revert migrations down to REVISION (one step by default)."""
    engine = connect(database_url)
    migrate.downgrade(engine, revision)
    click.echo(f"database at revision {migrate.current_revision(engine) or 'base (empty)'}")


@db.command()
@database_url_option
def current(database_url: str) -> None:
    """Print the database's revision and whether it is up to date."""
    engine = connect(database_url)
    revision = migrate.current_revision(engine)
    head = migrate.head_revision()
    state = "up to date" if revision == head else f"behind head {head}: run 'flowscope db upgrade'"
    click.echo(f"{revision or 'base (empty)'} ({state})")
