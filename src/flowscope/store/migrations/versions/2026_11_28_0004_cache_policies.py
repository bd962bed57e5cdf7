"""Cache policies: each workflow's cache settings as set through the API.

Why: whether a node is cached and for how long is overridable per workflow and per node
(`PUT .../cache/policy`); every server process reads the same row.

Revision ID: 0004_cache_policies
Revises: 0003_cache
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_cache_policies"
down_revision = "0003_cache"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cache_policies",
        sa.Column("workflow_pk", BigId, nullable=False),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("workflow_pk", name="pk_cache_policies"),
        sa.ForeignKeyConstraint(
            ["workflow_pk"],
            ["workflows.id"],
            name="fk_cache_policies_workflow_pk_workflows",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("cache_policies")
