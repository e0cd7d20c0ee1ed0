"""Accounts: sessions signed out on one device

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04

"Sign out" ends this device's session only (its id is refused from then on); "Sign out
everywhere" still bumps the person's session version.

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "signed_out_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "signed_out_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),  # fmt: skip
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signed_out_sessions_user_id", "signed_out_sessions", ["user_id"])


def downgrade():
    op.drop_index("ix_signed_out_sessions_user_id", table_name="signed_out_sessions")
    op.drop_table("signed_out_sessions")
