"""Accounts lifecycle: Google identities, tokens, exports, deletion receipts (issue 7)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# SQLite reflects foreign keys without names; this convention names them so batch mode can
# drop them. PostgreSQL named them <table>_<column>_fkey when 0001 created them.
_SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
# Billing rows outlive the account as financial records (PRODUCT.md: "Billing records are kept").
_KEPT_BILLING_TABLES = ("subscriptions", "gpu_usage")


def _timestamp(name, nullable=False, now=False):
    default = sa.text("CURRENT_TIMESTAMP") if now else None
    return sa.Column(name, sa.DateTime(timezone=True), server_default=default, nullable=nullable)


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_email", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("policy_version", sa.String(length=20), nullable=True))
        batch_op.add_column(_timestamp("deletion_requested_at", nullable=True))

    op.create_table(
        "identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        _timestamp("created_at", now=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider", "subject", name="uq_identities_provider_subject"),
    )
    op.create_index("ix_identities_user_id", "identities", ["user_id"], unique=False)

    op.create_table(
        "data_exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("storage_key", sa.String(length=1024), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        _timestamp("created_at", now=True),
        _timestamp("finished_at", nullable=True),
        _timestamp("expires_at", nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_data_exports_user_id", "data_exports", ["user_id"], unique=False)

    op.create_table(
        "deletion_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("group_key", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("what", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("object_count", sa.Integer(), nullable=False),
        _timestamp("requested_at"),
        _timestamp("deleted_at", nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_key"),
    )
    op.create_index("ix_deletion_receipts_user_id", "deletion_receipts", ["user_id"], unique=False)

    op.create_table(
        "retention_warnings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("group_key", sa.String(length=200), nullable=False),
        sa.Column("days_before", sa.Integer(), nullable=False),
        _timestamp("deadline"),
        _timestamp("sent_at"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_key", "days_before", name="uq_retention_warnings_group_days"),
    )
    op.create_index(
        "ix_retention_warnings_user_id", "retention_warnings", ["user_id"], unique=False
    )

    for table in _KEPT_BILLING_TABLES:
        _replace_user_fk(table, ondelete="SET NULL", nullable=True)


def downgrade():
    # Rows whose account is gone cannot point at a user again; they leave with the downgrade.
    for table in _KEPT_BILLING_TABLES:
        op.execute(sa.text(f"DELETE FROM {table} WHERE user_id IS NULL"))
        _replace_user_fk(table, ondelete="CASCADE", nullable=False)
    for table in ("retention_warnings", "deletion_receipts", "data_exports", "identities"):
        op.drop_index(f"ix_{table}_user_id", table_name=table)
        op.drop_table(table)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("deletion_requested_at")
        batch_op.drop_column("policy_version")
        batch_op.drop_column("pending_email")


def _replace_user_fk(table, ondelete, nullable):
    """Re-create `table`.user_id's foreign key to users with another ON DELETE rule."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    name = f"fk_{table}_user_id_users" if sqlite else f"{table}_user_id_fkey"
    options = {"naming_convention": _SQLITE_NAMES} if sqlite else {}
    with op.batch_alter_table(table, schema=None, **options) as batch_op:
        batch_op.drop_constraint(name, type_="foreignkey")
        batch_op.alter_column("user_id", existing_type=sa.Integer(), nullable=nullable)
        batch_op.create_foreign_key(name, "users", ["user_id"], ["id"], ondelete=ondelete)
