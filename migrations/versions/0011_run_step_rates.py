"""Training runs: the measured seconds per step and start-up of a finished run

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

The estimate of a new run is calibrated from these (the median of recent runs of the same
family on the same GPU class), with the catalogue's bench figures until there are any.

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("training_runs", sa.Column("seconds_per_step", sa.Double(), nullable=True))
    op.add_column("training_runs", sa.Column("startup_seconds", sa.Double(), nullable=True))
    op.create_index("ix_training_runs_family_queue", "training_runs", ["family", "queue"])


def downgrade():
    op.drop_index("ix_training_runs_family_queue", table_name="training_runs")
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        batch_op.drop_column("startup_seconds")
        batch_op.drop_column("seconds_per_step")
