"""Cache statistics and leases.

Why: `GET .../cache/statistics` and `.../cache/top-nodes` report what the cache saved (the
counters are additive, so every server process adds its own); `cache_leases` lets one caller
compute a missing result while others, in any process, wait for it.

Revision ID: 0005_cache_stats
Revises: 0004_cache_policies
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_cache_stats"
down_revision = "0004_cache_policies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big = sa.BigInteger
    op.create_table(
        "cache_stats",
        sa.Column("tenant_id", big, nullable=False),
        sa.Column("app_id", sa.String(255), nullable=False),
        sa.Column("workflow_id", sa.String(255), nullable=False),
        sa.Column("day_us", big, nullable=False),
        sa.Column("node_id", sa.String(255), nullable=False),
        sa.Column("lookups", big, nullable=False),
        sa.Column("hits", big, nullable=False),
        sa.Column("unmeasured_hits", big, nullable=False),
        sa.Column("stores", big, nullable=False),
        sa.Column("skipped", big, nullable=False),
        sa.Column("time_saved_ms", sa.Float, nullable=False),
        sa.Column("cost_saved", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "app_id", "workflow_id", "day_us", "node_id", name="pk_cache_stats"
        ),
        sqlite_with_rowid=False,
    )

    op.create_table(
        "cache_leases",
        sa.Column("tenant_id", big, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("expires_at_us", big, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key", name="pk_cache_leases"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("cache_leases")
    op.drop_table("cache_stats")
