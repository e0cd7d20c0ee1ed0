"""Privacy rules for people: what we hold, deleting it early, deleting the account."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from app import object_keys
from app.accounts.google import recently_reauthenticated
from app.accounts.models import User
from app.accounts.passwords import verify_password
from app.accounts.services import account_is_leaving
from app.billing.deletion_dates import retention_schedule
from app.billing.models import GpuUsage, Subscription
from app.datasets.models import Dataset, DatasetItem
from app.datasets.services import get_dataset
from app.db_types import utcnow
from app.extensions import db, get_redis
from app.privacy.deletion import (
    DeletionError,
    execute_receipt,
    group_key_for_request,
    open_receipt,
)
from app.privacy.erasure import queue_erasure, stop_work
from app.privacy.exports import list_exports
from app.privacy.models import DeletionReceipt
from app.privacy.retention import LOCK_KEY, LOCK_TIMEOUT_S
from app.queues import PRIVACY_QUEUE, enqueue_task
from app.trainings.models import FINISHED_STATUSES, TrainingRun
from app.trainings.services import get_run

DELETION_JOB_TIMEOUT_S = 3600
# Short: while the hourly pass holds the lock, the privacy worker should not sit waiting.
LOCK_WAIT_S = 5
RETRY_DELAY = timedelta(minutes=5)


def my_data(user: User, now: datetime | None = None) -> dict[str, Any]:
    """Everything shown on the my-data page."""
    now = now or utcnow()
    datasets = db.session.execute(
        select(
            Dataset, func.count(DatasetItem.id), func.coalesce(func.sum(DatasetItem.size_bytes), 0)
        )
        .outerjoin(DatasetItem)
        .where(Dataset.user_id == user.id)
        .group_by(Dataset.id)
        .order_by(Dataset.id)
    ).all()
    runs = db.session.scalars(
        select(TrainingRun).where(TrainingRun.user_id == user.id).order_by(TrainingRun.id)
    ).all()
    usage = db.session.execute(
        select(func.count(GpuUsage.id), func.coalesce(func.sum(GpuUsage.gpu_seconds), 0.0)).where(
            GpuUsage.user_id == user.id
        )
    ).one()
    return {
        "schedule": retention_schedule(user, now),
        "datasets": [{"dataset": d, "items": n, "bytes": size} for d, n, size in datasets],
        "runs": runs,
        "subscriptions": db.session.scalars(
            select(Subscription).where(Subscription.user_id == user.id).order_by(Subscription.id)
        ).all(),
        "usage": {"segments": usage[0], "gpu_seconds": float(usage[1])},
        "exports": list_exports(user),
        "receipts": db.session.scalars(
            select(DeletionReceipt)
            .where(DeletionReceipt.user_id == user.id, DeletionReceipt.status != "empty")
            .order_by(DeletionReceipt.id.desc())
        ).all(),
    }


def request_deletion(user: User, scope: str, target_id: int | None = None) -> DeletionReceipt:
    """Delete a dataset, a run's files, or all files now; the receipt shows the progress."""
    if scope == "dataset":
        target_id = get_dataset(user, target_id or 0).id
        if _has_unfinished_runs(user, dataset_id=target_id):
            raise DeletionError("A queued or running run is using this dataset. Cancel it first.")
    elif scope == "run":
        run = get_run(user, target_id or 0)
        if not run.is_finished:
            raise DeletionError("Cancel the run first; its files can be deleted once it stops.")
    elif scope == "everything":
        if _has_unfinished_runs(user):
            raise DeletionError("Cancel your queued and running runs first.")
        target_id = None
    else:
        raise DeletionError("Unknown deletion request.")
    key = group_key_for_request(user.id, scope, target_id)
    receipt = open_receipt(user.id, scope, "requested", key, target_id)
    enqueue_task(
        "jobs.retention.run_deletion",
        receipt.id,
        queue=PRIVACY_QUEUE,
        timeout_s=DELETION_JOB_TIMEOUT_S,
    )
    return receipt


def _has_unfinished_runs(user: User, dataset_id: int | None = None) -> bool:
    query = select(TrainingRun.id).where(
        TrainingRun.user_id == user.id, TrainingRun.status.not_in(FINISHED_STATUSES)
    )
    if dataset_id is not None:
        query = query.where(TrainingRun.dataset_id == dataset_id)
    return db.session.scalar(query.limit(1)) is not None


def run_requested_deletion(receipt_id: int) -> str:
    """Worker side of request_deletion; waits for (or defers to) a running retention pass."""
    receipt = db.session.get(DeletionReceipt, receipt_id)
    if receipt is None or receipt.status not in ("pending", "deleting"):
        return "skipped"
    lock = get_redis().lock(LOCK_KEY, timeout=LOCK_TIMEOUT_S, blocking_timeout=LOCK_WAIT_S)
    if not lock.acquire():
        enqueue_task(
            "jobs.retention.run_deletion",
            receipt_id,
            queue=PRIVACY_QUEUE,
            timeout_s=DELETION_JOB_TIMEOUT_S,
            at=utcnow() + RETRY_DELAY,
        )
        return "deferred"
    try:
        db.session.refresh(receipt)
        return execute_receipt(receipt).status
    finally:
        lock.release()


def request_account_deletion(user: User, password: str) -> None:
    """Confirm with the password (or a fresh Google sign-in), then at once: sign out
    everywhere, refuse the person's download links and e-mails (both check
    deletion_requested_at), stop their runs and renders; and queue the erasure."""
    if user.has_password:
        if not password:
            raise DeletionError("Your password is required to delete the account.")
        if not verify_password(user.password_hash, password):
            raise DeletionError("That is not your password.")
    elif not recently_reauthenticated():
        raise DeletionError("Confirm with Google first: sign in with Google again, then delete.")
    user.deletion_requested_at = utcnow()
    user.session_version += 1
    db.session.commit()
    stop_work(user)
    queue_erasure(user.id)


def download_allowed(key: str) -> bool:
    """A signed download link works only while the object's owner exists and is not being
    deleted: from the delete request on, every link handed out before is dead."""
    owner = object_keys.owner_of(key)
    return owner is not None and not account_is_leaving(owner)
