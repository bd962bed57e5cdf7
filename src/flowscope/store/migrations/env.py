"""Alembic environment: runs migrations on the engine handed over by flowscope.store.migrate."""

from __future__ import annotations

from alembic import context

from flowscope.store import dialect
from flowscope.store.tables import metadata

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=dialect.is_sqlite(connection),
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
