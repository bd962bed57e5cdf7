"""Run ids unique per tenant, not across the server.

Why: with one id space for every tenant, a 422 told one tenant that another had a run of
that id, and let it take an id first (OTLP trace ids too). Each tenant now has its own run
ids: two tenants may both send `r1`, and neither learns of the other's. Existing runs keep
their ids, which were unique across the server and so are unique per tenant.

Revision ID: 0011_run_ids_per_tenant
Revises: 0010_run_savings
Create Date: 2026-12-03
"""

from alembic import op

revision = "0011_run_ids_per_tenant"
down_revision = "0010_run_savings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflow_runs") as batch:
        batch.drop_constraint("uq_workflow_runs_run_id", type_="unique")
        batch.create_unique_constraint("uq_workflow_runs_tenant_id_run_id", ["tenant_id", "run_id"])


def downgrade() -> None:
    # Fails if two tenants have since used the same run id: say so rather than lose runs.
    with op.batch_alter_table("workflow_runs") as batch:
        batch.drop_constraint("uq_workflow_runs_tenant_id_run_id", type_="unique")
        batch.create_unique_constraint("uq_workflow_runs_run_id", ["run_id"])
