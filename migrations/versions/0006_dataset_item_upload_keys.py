"""Dataset items: the key the browser uploads to, apart from the checked bytes (issue 18)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24

`storage_key` now names the bytes ingest checked, at a key only the server writes, and
`upload_key` the key the browser was given. Rows still in flight (uploading, uploaded) move
their key to `upload_key`, so ingest copies it out of the browser's reach as it does for new
uploads. Ready rows ingested before this revision keep their original key as `storage_key`:
those bytes were checked where they lie, and training keeps reading them there.

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

IN_FLIGHT = "status IN ('uploading', 'uploaded')"


def upgrade():
    with op.batch_alter_table("dataset_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("upload_key", sa.String(length=1024), nullable=True))
        batch_op.create_index("ix_dataset_items_upload_key", ["upload_key"], unique=True)
    op.execute(
        f"UPDATE dataset_items SET upload_key = storage_key, storage_key = '' "
        f"WHERE {IN_FLIGHT} AND storage_key <> ''"
    )


def downgrade():
    op.execute(
        f"UPDATE dataset_items SET storage_key = upload_key "
        f"WHERE {IN_FLIGHT} AND upload_key IS NOT NULL"
    )
    with op.batch_alter_table("dataset_items", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_items_upload_key")
        batch_op.drop_column("upload_key")
