"""Billing: plans, Stripe customers, webhook events (issue 6)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "billing_customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id"),
        sa.UniqueConstraint("stripe_customer_id"),
    )
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cancel_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("previous_period_start", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("gpu_usage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("overage_s", sa.Double(), nullable=True))
        batch_op.create_index("ix_gpu_usage_reported_at", ["reported_at"], unique=False)


def downgrade():
    with op.batch_alter_table("gpu_usage", schema=None) as batch_op:
        batch_op.drop_index("ix_gpu_usage_reported_at")
        batch_op.drop_column("overage_s")
        batch_op.drop_column("reported_at")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("previous_period_start")
        batch_op.drop_column("cancel_at")
    op.drop_table("stripe_events")
    op.drop_table("billing_customers")
