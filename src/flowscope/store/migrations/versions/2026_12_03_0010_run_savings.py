"""Per-run savings: each run's replayed saving with a node halved, as a histogram.

Why: the bottlenecks' "estimated saving per run" was the drop of the median run time (a
difference of medians), which readers took for what one run saves: on the demo it showed
8.03 s for three different nodes, one of which has a median half-duration of 5.0 s on the
path. `run_saving_hist` holds each analysed run's own saving (counts by logarithmic bucket,
as `lat_hist`), so its median is the typical saving of one run. Rollups written before this
revision have none (an empty object): their runs count as saving nothing until re-ingested.

Revision ID: 0010_run_savings
Revises: 0009_otlp_calls
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_run_savings"
down_revision = "0009_otlp_calls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("node_rollups", table_kwargs={"sqlite_with_rowid": False}) as batch:
        batch.add_column(sa.Column("run_saving_hist", sa.Text, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("node_rollups", table_kwargs={"sqlite_with_rowid": False}) as batch:
        batch.drop_column("run_saving_hist")
