"""Integrations: import cursors (Dify database import) and received OTLP spans.

Why: `flowscope import dify` resumes where the last import stopped (a watermark on Dify's
(created_at, id), written in the same transaction as the imported runs, so a killed import
re-run neither loses nor doubles anything) and re-reads the runs it imported unfinished.
OTLP exporters send a trace's spans in several requests, children usually before the root:
spans are kept by (trace, span) id so every request rebuilds the trace's run from all of them,
idempotently.

Revision ID: 0007_integrations
Revises: 0006_advisor
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_integrations"
down_revision = "0006_advisor"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "import_cursors",
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        # The last imported row's (created_at, id): the next import reads rows after it.
        sa.Column("position_at_us", sa.BigInteger, nullable=True),
        sa.Column("position_id", sa.String(255), nullable=True),
        # JSON list of run ids imported while still running or paused, re-read each pass.
        sa.Column("unfinished", sa.Text, nullable=False),
        sa.Column("imported_runs", sa.BigInteger, nullable=False),
        sa.Column("imported_node_executions", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "source", name="pk_import_cursors"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_import_cursors_tenant_id_tenants",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "otlp_spans",
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("span_id", sa.String(16), nullable=False),
        sa.Column("parent_span_id", sa.String(16), nullable=True),
        # The span reduced to what the mapping reads (JSON), not its whole payload.
        sa.Column("span", sa.Text, nullable=False),
        sa.Column("received_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "trace_id", "span_id", name="pk_otlp_spans"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_otlp_spans_tenant_id_tenants",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("otlp_spans")
    op.drop_table("import_cursors")
