"""Core tables: tenants, API keys, apps, workflows and versions, runs, node executions.

Why: everything else (rollups, cache, advisor) hangs off these. Times are integer epoch
microseconds; node executions are clustered on (run, id) so a run reads back in one range,
and keep their descriptive fields in one JSON `details` column to keep bulk writes cheap.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", BigId, autoincrement=True),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("revoked_at_us", sa.BigInteger, nullable=True),
        sa.Column("last_used_at_us", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_api_keys_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_table(
        "apps",
        sa.Column("id", BigId, autoincrement=True),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("app_id", sa.String(255), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_apps"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_apps_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("tenant_id", "app_id", name="uq_apps_tenant_id_app_id"),
    )
    op.create_table(
        "workflows",
        sa.Column("id", BigId, autoincrement=True),
        sa.Column("app_pk", BigId, nullable=False),
        sa.Column("workflow_id", sa.String(255), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workflows"),
        sa.ForeignKeyConstraint(
            ["app_pk"], ["apps.id"], name="fk_workflows_app_pk_apps", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("app_pk", "workflow_id", name="uq_workflows_app_pk_workflow_id"),
    )
    op.create_table(
        "workflow_versions",
        sa.Column("workflow_pk", BigId, nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("first_seen_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("workflow_pk", "version", name="pk_workflow_versions"),
        sa.ForeignKeyConstraint(
            ["workflow_pk"],
            ["workflows.id"],
            name="fk_workflow_versions_workflow_pk_workflows",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "workflow_runs",
        sa.Column("id", BigId, autoincrement=True),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("workflow_pk", BigId, nullable=False),
        sa.Column("workflow_version", sa.String(255), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_rank", sa.SmallInteger, nullable=False),
        sa.Column("started_at_us", sa.BigInteger, nullable=False),
        sa.Column("finished_at_us", sa.BigInteger, nullable=True),
        sa.Column("elapsed_ms", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("triggered_from", sa.String(255), nullable=True),
        sa.Column("inputs_hash", sa.String(255), nullable=True),
        sa.Column("reported_total_tokens", sa.BigInteger, nullable=True),
        sa.Column("total_tokens", sa.BigInteger, nullable=True),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=True),
        sa.Column("completion_tokens", sa.BigInteger, nullable=True),
        sa.Column("cost", sa.Float, nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("node_count", sa.Integer, nullable=False),
        sa.Column("cache_hits", sa.Integer, nullable=False),
        sa.Column("unpriced_node_executions", sa.Integer, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workflow_runs"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_workflow_runs_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workflow_pk"],
            ["workflows.id"],
            name="fk_workflow_runs_workflow_pk_workflows",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("run_id", name="uq_workflow_runs_run_id"),
    )
    op.create_index(
        "ix_workflow_runs_workflow_pk_started_at_us_id",
        "workflow_runs",
        ["workflow_pk", "started_at_us", "id"],
    )
    op.create_table(
        "node_executions",
        sa.Column("run_pk", BigId, nullable=False),
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("node_id", sa.String(255), nullable=False),
        sa.Column("node_type", sa.String(255), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("started_at_us", sa.BigInteger, nullable=False),
        sa.Column("finished_at_us", sa.BigInteger, nullable=True),
        sa.Column("elapsed_ms", sa.Float, nullable=True),
        sa.Column("model_provider", sa.String(255), nullable=True),
        sa.Column("model_name", sa.String(255), nullable=True),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=True),
        sa.Column("completion_tokens", sa.BigInteger, nullable=True),
        sa.Column("total_tokens", sa.BigInteger, nullable=True),
        sa.Column("cost", sa.Float, nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("cost_source", sa.String(16), nullable=False),
        sa.Column("cache_hit", sa.Boolean, nullable=False),
        sa.Column("input_hash", sa.String(255), nullable=True),
        sa.Column("retry_count", sa.Integer, nullable=False),
        sa.Column("parent_id", sa.String(255), nullable=True),
        sa.Column("details", sa.Text, nullable=True),
        # run_pk is not a declared foreign key: see NodeExecution's docstring.
        sa.PrimaryKeyConstraint("run_pk", "id", name="pk_node_executions"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("node_executions")
    op.drop_index("ix_workflow_runs_workflow_pk_started_at_us_id", table_name="workflow_runs")
    op.drop_table("workflow_runs")
    op.drop_table("workflow_versions")
    op.drop_table("workflows")
    op.drop_table("apps")
    op.drop_table("api_keys")
    op.drop_table("tenants")
