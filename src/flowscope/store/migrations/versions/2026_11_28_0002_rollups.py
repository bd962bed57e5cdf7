"""Rollups: run and node figures by workflow, hour or day, version and trigger.

Why: the analytics endpoints must answer in milliseconds at any volume, so they read these
instead of raw node executions. Scope 1 rows sum all versions and triggers, so unfiltered
queries read one row per bucket. Ingestion keeps them current with additive upserts; latency
histograms are JSON objects of counts by bucket key, merged on PostgreSQL by the SQL function
`flowscope_hist_add` created here (SQLite gets the same function from Python on connect).

Revision ID: 0002_rollups
Revises: 0001_core
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from flowscope.store import dialect

revision = "0002_rollups"
down_revision = "0001_core"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KEY = (
    "workflow_pk",
    "span_us",
    "scope",
    "bucket_start_us",
    "workflow_version",
    "triggered_from",
)

HIST_ADD = """
CREATE OR REPLACE FUNCTION flowscope_hist_add(a text, b text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT COALESCE(jsonb_object_agg(k, n)::text, '{}') FROM (
        SELECT k, SUM(n) AS n FROM (
            SELECT key AS k, value::bigint AS n FROM jsonb_each_text(COALESCE(a, '{}')::jsonb)
            UNION ALL
            SELECT key, value::bigint FROM jsonb_each_text(COALESCE(b, '{}')::jsonb)
        ) AS pairs GROUP BY k HAVING SUM(n) <> 0
    ) AS merged
$$
"""


def _common() -> list[sa.Column]:
    big = sa.BigInteger
    return [
        sa.Column("workflow_pk", BigId, nullable=False),
        sa.Column("span_us", big, nullable=False),
        sa.Column("scope", sa.SmallInteger, nullable=False),
        sa.Column("bucket_start_us", big, nullable=False),
        sa.Column("workflow_version", sa.String(255), nullable=False),
        sa.Column("triggered_from", sa.String(255), nullable=False),
        sa.Column("lat_count", big, nullable=False),
        sa.Column("lat_sum_ms", sa.Float, nullable=False),
        sa.Column("lat_min_ms", sa.Float, nullable=True),
        sa.Column("lat_max_ms", sa.Float, nullable=True),
        sa.Column("lat_hist", sa.Text, nullable=False),
        sa.Column("prompt_tokens", big, nullable=False),
        sa.Column("completion_tokens", big, nullable=False),
        sa.Column("total_tokens", big, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("unpriced", big, nullable=False),
        sa.Column("cache_lookups", big, nullable=False),
        sa.Column("cache_hits", big, nullable=False),
    ]


def upgrade() -> None:
    big = sa.BigInteger
    op.create_table(
        "run_rollups",
        *_common(),
        sa.Column("runs", big, nullable=False),
        sa.Column("finished", big, nullable=False),
        sa.Column("succeeded", big, nullable=False),
        sa.Column("failed", big, nullable=False),
        sa.Column("node_executions", big, nullable=False),
        sa.Column("analysed_runs", big, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name="pk_run_rollups"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "node_rollups",
        *_common(),
        sa.Column("node_id", sa.String(255), nullable=False),
        sa.Column("node_type", sa.String(255), nullable=False),
        sa.Column("title", sa.String(1000), nullable=True),
        sa.Column("executions", big, nullable=False),
        sa.Column("failed", big, nullable=False),
        sa.Column("retries", big, nullable=False),
        sa.Column("cp_runs", big, nullable=False),
        sa.Column("cp_us", big, nullable=False),
        sa.Column("wait_us", big, nullable=False),
        sa.Column("saving_runs", big, nullable=False),
        sa.Column("saving_ms_sum", sa.Float, nullable=False),
        sa.Column("saving_hist", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint(*KEY, "node_id", name="pk_node_rollups"),
        sqlite_with_rowid=False,
    )
    if dialect.is_postgres(op.get_bind()):
        op.execute(HIST_ADD)


def downgrade() -> None:
    if dialect.is_postgres(op.get_bind()):
        op.execute("DROP FUNCTION IF EXISTS flowscope_hist_add(text, text)")
    op.drop_table("node_rollups")
    op.drop_table("run_rollups")
