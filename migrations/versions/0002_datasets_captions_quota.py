"""Datasets: captions, zip uploads, storage accounting (issue 4)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("dataset_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fps", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("frame_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("archive_name", sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table("dataset_items", schema=None) as batch_op:
        batch_op.drop_column("archive_name")
        batch_op.drop_column("frame_count")
        batch_op.drop_column("fps")
