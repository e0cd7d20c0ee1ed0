"""Training runs: the revision of the dataset a run trained on

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04

"Continue" trains more steps on the same data; a run records what its dataset was (ready
items, their sizes and captions, the trigger word and caption template) so a continue after
the dataset changed is refused before it is queued. Runs from before have none: the engine's
own checkpoint check still refuses those.

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("training_runs", sa.Column("dataset_revision", sa.String(64), nullable=True))


def downgrade():
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        batch_op.drop_column("dataset_revision")
