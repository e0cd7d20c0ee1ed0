"""Ids are never handed out twice on SQLite: every table gets AUTOINCREMENT (issue 16)

Without AUTOINCREMENT SQLite gives a new row max(id) + 1, so deleting the newest account (or
run, dataset, ...) lets the next one inherit its id, and with it whatever outlived the row:
ledger segment keys, Redis live-progress keys, job ids, storage prefixes and session cookies.
SQLite cannot add AUTOINCREMENT in place, so each table is rebuilt (batch mode copies the
rows, indexes and constraints). PostgreSQL sequences never go back: nothing to do there.

Revision ID: 0008
Revises: 0007_webhooks
Create Date: 2026-11-24

"""

import re

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007_webhooks"
branch_labels = None
depends_on = None

# Parents before children does not matter (SQLite leaves foreign keys unchecked here), but
# every table with an integer id is listed; stripe_events is keyed by Stripe's event id.
TABLES = (
    "users",
    "identities",
    "billing_customers",
    "subscriptions",
    "datasets",
    "dataset_items",
    "training_runs",
    "generations",
    "quota_periods",
    "gpu_usage",
    "data_exports",
    "deletion_receipts",
    "retention_warnings",
    "webhook_endpoints",
    "webhook_run_secrets",
    "webhook_deliveries",
    "webhook_attempts",
)
# The usage ledger outlives erased runs and renders; its segment keys name their ids.
LEDGER_TRACES = {
    "training_runs": re.compile(r"^run:(\d+):"),
    "generations": re.compile(r"^generation:(\d+)$"),
}


def upgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild_tables(autoincrement=True)
    for table, pattern in LEDGER_TRACES.items():
        _start_counter_above(table, _highest_traced_id(pattern))


def _rebuild_tables(autoincrement: bool) -> None:
    """Copy every table into one created with (or without) AUTOINCREMENT."""
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def _highest_traced_id(pattern: re.Pattern[str]) -> int:
    """The largest id a ledger segment key names, deleted rows included."""
    keys = op.get_bind().execute(sa.text("SELECT segment_key FROM gpu_usage")).scalars()
    return max((int(m.group(1)) for key in keys if (m := pattern.match(key))), default=0)


def _start_counter_above(table: str, floor: int) -> None:
    """Make SQLite's AUTOINCREMENT counter of `table` at least `floor`."""
    if floor <= 0:
        return
    bind = op.get_bind()
    current = bind.execute(
        sa.text("SELECT seq FROM sqlite_sequence WHERE name = :name"), {"name": table}
    ).scalar()
    if current is None:
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"),
            {"name": table, "seq": floor},
        )
    elif current < floor:
        bind.execute(
            sa.text("UPDATE sqlite_sequence SET seq = :seq WHERE name = :name"),
            {"name": table, "seq": floor},
        )


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_tables(autoincrement=False)
