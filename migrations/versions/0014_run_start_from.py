"""Training runs: the finished run whose LoRA a new run starts from

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04

A new run may start from the weights of one of the person's finished runs (same base model
and rank) with settings and data of its own, at step 0; "continue" stays what trains the same
run further.

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


# SQLite rebuilds the table for a new constraint: it keeps its AUTOINCREMENT (0008).
KEEP_IDS = {"sqlite_autoincrement": True}


def upgrade():
    with op.batch_alter_table("training_runs", table_kwargs=KEEP_IDS) as batch_op:
        batch_op.add_column(sa.Column("start_from_run_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_training_runs_start_from_run_id", "training_runs", ["start_from_run_id"], ["id"],
            ondelete="SET NULL",
        )


def downgrade():
    with op.batch_alter_table("training_runs", table_kwargs=KEEP_IDS) as batch_op:
        batch_op.drop_constraint("fk_training_runs_start_from_run_id", type_="foreignkey")
        batch_op.drop_column("start_from_run_id")
