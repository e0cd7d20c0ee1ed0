"""Erasing an account: billing stopped, work stopped, every object, row and Redis key gone.

The delete request itself stops the work at once (stop_work): queued runs and renders are
cancelled, running ones are asked to stop, which the training loop sees within a step. The
erasure job then runs on the privacy queue, which a long training job cannot hold up; it
looks twice a second until the person's jobs have stopped, so it finishes within a second
of the last one (after a minute it frees the worker and looks again every few seconds).
Billing records (subscriptions, the GPU-usage ledger) are kept as financial records without
the person: their user_id becomes NULL and the Stripe customer id stays on the
subscription. Each step can be repeated, so a job that dies part-way is simply run again.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import delete, func, select, update

from app import object_keys
from app.accounts.models import User
from app.billing.actions import end_subscription_now
from app.billing.models import GpuUsage, Subscription
from app.datasets.models import Dataset, DatasetItem
from app.db_types import utcnow
from app.extensions import db, get_settings, get_storage
from app.privacy.deletion import count_objects
from app.privacy.notices import queue_account_deleted
from app.privacy.traces import forget_traces, traces_of
from app.queues import PRIVACY_QUEUE, enqueue_task, started_jobs
from app.trainings.models import FINISHED_STATUSES, Generation, TrainingRun
from app.trainings.services import cancel_run

log = logging.getLogger(__name__)
# Financial records outlive the account (PRODUCT.md); their user_id is set to NULL.
KEPT_TABLES = frozenset({Subscription.__tablename__, GpuUsage.__tablename__})
STOP_POLL_S = 0.5
STOP_WAIT_IN_JOB = timedelta(minutes=1)
STOP_RECHECK = timedelta(seconds=5)
# A worker that never answers (hung, cut off) does not keep the data: erase anyway.
STOP_DEADLINE = timedelta(minutes=15)
# Presigned upload URLs handed out before the request still work until they expire; a last
# sweep after that removes whatever they brought in.
LATE_SWEEP_MARGIN = timedelta(minutes=5)
JOB_TIMEOUT_S = 3600


def erase_job_id(user_id: int, attempt: int = 1) -> str:
    """The RQ job id of one look of the erasure of account `user_id`."""
    return f"delete-account-{user_id}" if attempt == 1 else f"delete-account-{user_id}-{attempt}"


def queue_erasure(user_id: int, attempt: int = 1, delay: timedelta | None = None) -> None:
    """Queue (again) the erasure of account `user_id` on the privacy queue."""
    enqueue_task(
        "jobs.accounts.delete_account",
        user_id,
        attempt,
        queue=PRIVACY_QUEUE,
        timeout_s=JOB_TIMEOUT_S,
        job_id=erase_job_id(user_id, attempt),
        description="account erasure",
        result_ttl_s=0,  # a finished erasure leaves nothing naming the person in Redis
        at=None if delay is None else utcnow() + delay,
    )


def stop_work(user: User) -> None:
    """Cancel the person's queued runs and renders; ask running runs to stop at their next step."""
    runs = db.session.scalars(
        select(TrainingRun).where(
            TrainingRun.user_id == user.id, TrainingRun.status.not_in(FINISHED_STATUSES)
        )
    ).all()
    for run in runs:
        if not run.cancel_requested or run.status == "queued":
            cancel_run(run)
    # A running render checks its owner before it stores anything (jobs.generations).
    db.session.execute(
        update(Generation)
        .where(Generation.user_id == user.id, Generation.status == "queued")
        .values(status="cancelled", finished_at=utcnow())
    )
    db.session.commit()


def erase_account(user_id: int, attempt: int = 1) -> str:
    """Erase the account whose deletion was requested; returns what happened."""
    user = db.session.get(User, user_id)
    if user is None:
        return "already deleted"
    if user.deletion_requested_at is None:
        return "not requested"
    # The subscription ends at once, in Stripe first (no refund), and the local row records
    # the end; once it has ended this does nothing, so a retried erasure passes straight on.
    end_subscription_now(user)  # raises BillingError while Stripe is unreachable: retried
    stop_work(user)
    # Deleting files under a running job would race its uploads: wait for it to stop.
    busy = _wait_until_stopped(user)
    if busy and utcnow() < user.deletion_requested_at + STOP_DEADLINE:
        queue_erasure(user_id, attempt + 1, delay=STOP_RECHECK)
        return f"waiting for {busy} to stop"
    traces = traces_of(user)
    storage, prefix = get_storage(), object_keys.user_prefix(user.id)
    summary = _summary(user, count_objects(storage, [prefix]))
    storage.delete_prefix(prefix)
    storage.revoke_upload_urls(prefix)
    forget_traces(user, traces)
    email, name = user.email, user.name
    _delete_rows(user.id)
    db.session.commit()
    log.info("account %d erased: %s", user_id, summary)
    enqueue_task(
        "jobs.accounts.sweep_erased_account",
        user_id,
        queue=PRIVACY_QUEUE,
        timeout_s=JOB_TIMEOUT_S,
        description="late sweep of an erased account",
        result_ttl_s=0,
        at=utcnow() + timedelta(seconds=get_settings().upload_url_expiry_s) + LATE_SWEEP_MARGIN,
    )
    queue_account_deleted(email, name, summary)
    return "deleted"


def _wait_until_stopped(user: User) -> str | None:
    """Look twice a second, for up to STOP_WAIT_IN_JOB, until nothing of the person runs;
    returns what still runs ("2 jobs"), or None."""
    until = time.monotonic() + STOP_WAIT_IN_JOB.total_seconds()
    while True:
        busy = _busy(user, traces_of(user).job_ids)
        if busy is None or time.monotonic() >= until:
            return busy
        time.sleep(STOP_POLL_S)
        db.session.rollback()  # a fresh transaction sees what the workers committed since


def _busy(user: User, job_ids: list[str]) -> str | None:
    """What of the person's work is still running ("2 jobs"), or None."""
    alive_since = utcnow() - timedelta(seconds=get_settings().run_heartbeat_timeout_s)
    # A run whose job Redis lost still writes while its worker beats.
    beating = db.session.scalar(
        select(func.count()).where(
            TrainingRun.user_id == user.id,
            TrainingRun.status == "running",
            TrainingRun.heartbeat_at >= alive_since,
        )
    )
    running = len(started_jobs(job_ids)) or beating or 0
    return f"{running} job{'s' if running != 1 else ''}" if running else None


def sweep_late_uploads(user_id: int) -> int:
    """Delete what reached the erased account's prefix after the erasure (an S3 presigned PUT
    cannot be revoked, only outlived)."""
    if db.session.get(User, user_id) is not None:
        return 0  # not erased (ids are never reused, so this is the same person)
    return get_storage().delete_prefix(object_keys.user_prefix(user_id))


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
