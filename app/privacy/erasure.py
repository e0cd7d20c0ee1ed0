"""Erasing an account: billing stopped, runs stopped, every object and row gone, a receipt sent.

Billing records (subscriptions, the GPU-usage ledger) are kept as financial records without
the person: their user_id becomes NULL and the Stripe customer id stays on the subscription.
Each step can be repeated, so a job that dies part-way is simply run again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, func, select, update

from app.accounts.models import User
from app.billing import services as billing_services
from app.billing.models import GpuUsage, Subscription
from app.datasets.models import Dataset, DatasetItem
from app.extensions import db, get_storage
from app.privacy.deletion import count_objects
from app.privacy.notices import queue_account_deleted
from app.queues import CPU_QUEUE, get_queue
from app.trainings.models import FINISHED_STATUSES, TrainingRun
from app.trainings.services import cancel_run

log = logging.getLogger(__name__)
# Financial records outlive the account (PRODUCT.md); their user_id is set to NULL.
KEPT_TABLES = frozenset({Subscription.__tablename__, GpuUsage.__tablename__})
RUN_STOP_WAIT = timedelta(seconds=30)
RUN_STOP_ATTEMPTS = 20  # about ten minutes for running runs to notice the cancellation
JOB_TIMEOUT_S = 3600


def erase_account(user_id: int, attempt: int = 1) -> str:
    """Erase the account whose deletion was requested; returns what happened."""
    user = db.session.get(User, user_id)
    if user is None:
        return "already deleted"
    if user.deletion_requested_at is None:
        return "not requested"
    # Issue 6's billing service cancels the Stripe subscription immediately (no refund logic
    # here) and records the end on the local row.
    billing_services.cancel_subscription_for_deletion(user)
    if _stop_runs(user) and attempt < RUN_STOP_ATTEMPTS:
        # A running run stops at its next step; deleting its files first would race its uploads.
        get_queue(CPU_QUEUE).enqueue_in(
            RUN_STOP_WAIT,
            "jobs.accounts.delete_account",
            user_id,
            attempt + 1,
            job_timeout=JOB_TIMEOUT_S,
        )
        return "waiting for runs to stop"
    storage, prefix = get_storage(), f"users/{user.id}/"
    summary = _summary(user, count_objects(storage, [prefix]))
    storage.delete_prefix(prefix)
    email, name = user.email, user.name
    _delete_rows(user.id)
    db.session.commit()
    log.info("account %d erased: %s", user_id, summary)
    queue_account_deleted(email, name, summary)
    return "deleted"


def _stop_runs(user: User) -> int:
    """Cancel queued runs, ask running ones to stop; returns how many are still running."""
    runs = db.session.scalars(
        select(TrainingRun).where(
            TrainingRun.user_id == user.id, TrainingRun.status.not_in(FINISHED_STATUSES)
        )
    ).all()
    for run in runs:
        if not run.cancel_requested or run.status == "queued":
            cancel_run(run)
    return sum(1 for run in runs if not run.is_finished)


def _summary(user: User, objects: int) -> dict[str, int]:
    def count(model: type, *where: object) -> int:
        return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    return {
        "Datasets": count(Dataset, Dataset.user_id == user.id),
        "Dataset files": count(
            DatasetItem,
            DatasetItem.dataset_id.in_(select(Dataset.id).where(Dataset.user_id == user.id)),
        ),
        "Training runs": count(TrainingRun, TrainingRun.user_id == user.id),
        "Stored objects (all versions removed)": objects,
    }


def _delete_rows(user_id: int) -> None:
    """Every row of the person except billing records, children first (SQLite has no cascades)."""
    runs = select(TrainingRun.id).where(TrainingRun.user_id == user_id)
    db.session.execute(update(GpuUsage).where(GpuUsage.run_id.in_(runs)).values(run_id=None))
    for table_name in KEPT_TABLES:
        table = db.metadata.tables[table_name]
        db.session.execute(update(table).where(table.c.user_id == user_id).values(user_id=None))
    datasets = select(Dataset.id).where(Dataset.user_id == user_id)
    db.session.execute(delete(DatasetItem).where(DatasetItem.dataset_id.in_(datasets)))
    for table in reversed(db.metadata.sorted_tables):
        if table.name in KEPT_TABLES or table.name == User.__tablename__:
            continue
        if "user_id" in table.c:
            db.session.execute(delete(table).where(table.c.user_id == user_id))
    db.session.execute(delete(User.__table__).where(User.__table__.c.id == user_id))
