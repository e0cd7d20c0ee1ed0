"""Revoking an API key deletes it (seed 003: keys are kept until revoked): the keys revoked so
far are deleted and revoked_at goes

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("DELETE FROM api_keys WHERE revoked_at IS NOT NULL")
    # A plain DROP COLUMN (SQLite 3.35+ has it): a batch rebuild would lose AUTOINCREMENT.
    op.execute("ALTER TABLE api_keys DROP COLUMN revoked_at")


def downgrade():
    op.add_column("api_keys", sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
