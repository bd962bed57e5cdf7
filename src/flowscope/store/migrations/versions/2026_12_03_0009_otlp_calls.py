"""OTLP calls: model calls seen in received traces, to count a call reported twice once.

Why: instrumentations that do not share context (OpenInference's LangChain and OpenAI ones,
together) report each model call twice, the second time as a trace of its own. Telling the
second report from a real call needs the calls of other traces: by the emitting service, the
call's tokens and its time. Kept as long as received spans are.

Revision ID: 0009_otlp_calls
Revises: 0008_web_sessions
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_otlp_calls"
down_revision = "0008_web_sessions"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "otlp_calls",
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("span_id", sa.String(16), nullable=False),
        sa.Column("call_key", sa.String(64), nullable=False),
        sa.Column("model", sa.String(255), nullable=True),
        sa.Column("start_us", sa.BigInteger, nullable=False),
        sa.Column("end_us", sa.BigInteger, nullable=False),
        sa.Column("lone", sa.Boolean, nullable=False),
        # The instrumentation scope that reported it: a second report comes from another.
        sa.Column("scope", sa.String(1000), nullable=True),
        sa.Column("received_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "trace_id", "span_id", name="pk_otlp_calls"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_otlp_calls_tenant_id_tenants",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_otlp_calls_tenant_id_call_key_start_us",
        "otlp_calls",
        ["tenant_id", "call_key", "start_us"],
    )


def downgrade() -> None:
    op.drop_index("ix_otlp_calls_tenant_id_call_key_start_us", table_name="otlp_calls")
    op.drop_table("otlp_calls")
