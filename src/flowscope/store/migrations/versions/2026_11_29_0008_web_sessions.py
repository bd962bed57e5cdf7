"""Web sessions: the dashboard signs in with an API key once and keeps a session cookie.

Why: the cookie carries a random token, never the key; the table keeps only the token's
SHA-256 with the key it stands for, so revoking the key ends its sessions, and signing out
deletes the row.

Revision ID: 0008_web_sessions
Revises: 0007_integrations
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_web_sessions"
down_revision = "0007_integrations"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("key_id", BigId, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_web_sessions"),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name="fk_web_sessions_key_id_api_keys", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_web_sessions_expires_at_us", "web_sessions", ["expires_at_us"])


def downgrade() -> None:
    op.drop_index("ix_web_sessions_expires_at_us", table_name="web_sessions")
    op.drop_table("web_sessions")
