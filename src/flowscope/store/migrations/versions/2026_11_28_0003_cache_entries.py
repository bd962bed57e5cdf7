"""Cache entries: the SQL backend of the node result cache (issue 4).

Why: deployments without Redis keep cached node results in the flowscope database itself.
Rows are keyed by (tenant, cache key) so two tenants never share an entry; expired rows are
skipped by lookups and deleted by cleanup through the `expires_at_us` index, and
invalidation and stats read by (tenant, app, workflow). Not a foreign key to tenants:
entries are disposable and written on the request path.

Revision ID: 0003_cache
Revises: 0002_rollups
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_cache"
down_revision = "0002_rollups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big = sa.BigInteger
    op.create_table(
        "cache_entries",
        sa.Column("tenant_id", big, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("app_id", sa.String(255), nullable=False),
        sa.Column("workflow_id", sa.String(255), nullable=False),
        sa.Column("node_id", sa.String(255), nullable=False),
        sa.Column("node_type", sa.String(255), nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("size", big, nullable=False),
        sa.Column("stored_at_us", big, nullable=False),
        sa.Column("expires_at_us", big, nullable=False),
        sa.Column("elapsed_ms", sa.Float, nullable=True),
        sa.Column("cost", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "key", name="pk_cache_entries"),
    )
    op.create_index("ix_cache_entries_expires_at_us", "cache_entries", ["expires_at_us"])
    op.create_index(
        "ix_cache_entries_tenant_id_app_id_workflow_id",
        "cache_entries",
        ["tenant_id", "app_id", "workflow_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_cache_entries_tenant_id_app_id_workflow_id", table_name="cache_entries")
    op.drop_index("ix_cache_entries_expires_at_us", table_name="cache_entries")
    op.drop_table("cache_entries")
