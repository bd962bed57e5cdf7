"""Advisor: registered workflow graphs, recommendations and their audit trail.

Why: the advisor reads a workflow's graph (Dify DSL or neutral JSON) to tell data dependencies
from drawn edges, and keeps its recommendations across regenerations (idempotent by
fingerprint) with who dismissed what, when and why.

Revision ID: 0006_advisor
Revises: 0005_cache_stats
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_advisor"
down_revision = "0005_cache_stats"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "workflow_graphs",
        sa.Column("workflow_pk", BigId, nullable=False),
        sa.Column("workflow_version", sa.String(255), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("dsl_version", sa.String(32), nullable=True),
        sa.Column("graph", sa.Text, nullable=False),
        sa.Column("node_count", sa.Integer, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("workflow_pk", "workflow_version", name="pk_workflow_graphs"),
        sa.ForeignKeyConstraint(
            ["workflow_pk"],
            ["workflows.id"],
            name="fk_workflow_graphs_workflow_pk_workflows",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "recommendations",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("workflow_pk", BigId, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("title", sa.String(1000), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("node_ids", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("estimated_impact", sa.Text, nullable=False),
        sa.Column("impact_score", sa.Float, nullable=False),
        sa.Column("action_steps", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.Column("resolved_at_us", sa.BigInteger, nullable=True),
        sa.Column("dismissed_at_us", sa.BigInteger, nullable=True),
        sa.Column("dismissed_by", sa.String(255), nullable=True),
        sa.Column("dismiss_reason", sa.Text, nullable=True),
        sa.Column("dismissed_impact_score", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_recommendations"),
        sa.ForeignKeyConstraint(
            ["workflow_pk"],
            ["workflows.id"],
            name="fk_recommendations_workflow_pk_workflows",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "workflow_pk", "fingerprint", name="uq_recommendations_workflow_pk_fingerprint"
        ),
    )
    op.create_table(
        "recommendation_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("recommendation_id", BigId, nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_recommendation_events"),
        sa.ForeignKeyConstraint(
            ["recommendation_id"],
            ["recommendations.id"],
            name="fk_recommendation_events_recommendation_id_recommendations",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_recommendation_events_recommendation_id",
        "recommendation_events",
        ["recommendation_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_recommendation_events_recommendation_id", "recommendation_events")
    op.drop_table("recommendation_events")
    op.drop_table("recommendations")
    op.drop_table("workflow_graphs")
