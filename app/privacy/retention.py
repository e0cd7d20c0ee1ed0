"""The hourly pass that applies the retention rules (seed 004, sections 4-5).

The rule itself, the deletion dates every page shows too, is app.billing.deletion_dates; this
pass acts on the dates of people whose subscription ended (or who never had one): it warns,
deletes due data with a receipt per group, resumes what a crashed pass left and expires exports.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import User
from app.billing.deletion_dates import RetentionSchedule, schedule_for, settled
from app.billing.models import Subscription
from app.datasets.models import Dataset
from app.db_types import utcnow
from app.extensions import db, get_redis, get_storage
from app.privacy.deletion import UNFINISHED, execute_receipt, open_receipt
from app.privacy.erasure import queue_erasure
from app.privacy.models import DataExport, DeletionReceipt, RetentionWarning
from app.privacy.notices import queue_retention_warning
from app.privacy_policy import WARNING_DAYS
from app.trainings.artifacts import CAPTIONS_KIND
from app.trainings.models import FINISHED_STATUSES, TrainingRun

log = logging.getLogger(__name__)
GROUPS = ("media", "loras")
USER_BATCH = 500
STALE_EXPORT = timedelta(days=1)
LOCK_KEY = "attune:retention:lock"
LOCK_TIMEOUT_S = 3 * 3600
STUCK_ERASURE = timedelta(hours=1)


def group_key(user_id: int, group: str, deadline: datetime) -> str:
    """One key per person, group and deadline: a new subscription period gets new keys."""
    return f"retention:{user_id}:{group}:{deadline:%Y%m%dT%H%M%S}"


def apply_retention(now: datetime | None = None) -> dict[str, int]:
    """Resume unfinished deletions, warn, delete what is due, expire exports; re-runnable."""
    now = now or utcnow()
    lock = get_redis().lock(LOCK_KEY, timeout=LOCK_TIMEOUT_S, blocking=False)
    if not lock.acquire():
        log.info("retention: another pass is running; skipping")
        return {"skipped": 1}
    try:
        report: Counter[str] = Counter()
        _resume_unfinished(now, report)
        _resume_erasures(now, report)
        for user, subscriptions in _users_with_subscriptions(now):
            schedule = schedule_for(user.created_at, subscriptions, now)
            if schedule.is_due:
                _apply_to_user(user, schedule, now, report)
        expire_exports(now, report)
        log.info("retention pass at %s: %s", now.isoformat(), dict(report))
        return dict(report)
    finally:
        lock.release()


def _resume_unfinished(now: datetime, report: Counter[str]) -> None:
    """Finish receipts a crashed pass or a person's request left behind."""
    query = select(DeletionReceipt).where(DeletionReceipt.status.in_(UNFINISHED))
    for receipt in db.session.scalars(query.order_by(DeletionReceipt.id)).all():
        execute_receipt(receipt, now)
        report["resumed"] += 1


def _resume_erasures(now: datetime, report: Counter[str]) -> None:
    """Queue again the account deletions whose job died (they are re-runnable)."""
    stuck = db.session.scalars(
        select(User.id).where(User.deletion_requested_at <= now - STUCK_ERASURE)
    ).all()
    for user_id in stuck:
        queue_erasure(user_id)
        report["erasures_resumed"] += 1


def _users_with_subscriptions(now: datetime) -> Iterator[tuple[User, list[Subscription]]]:
    """Every account not being deleted, with its subscriptions, in id batches."""
    last_id = 0
    while True:
        users = db.session.scalars(
            select(User)
            .where(User.id > last_id, User.deletion_requested_at.is_(None))
            .order_by(User.id)
            .limit(USER_BATCH)
        ).all()
        if not users:
            return
        subs: dict[int, list[Subscription]] = {user.id: [] for user in users}
        for sub in db.session.scalars(
            select(Subscription).where(Subscription.user_id.in_(list(subs)))
        ):
            subs[sub.user_id].append(sub)  # type: ignore[index]
        for user in users:
            yield user, settled(subs[user.id], now)
        last_id = users[-1].id


def _apply_to_user(
    user: User, schedule: RetentionSchedule, now: datetime, report: Counter[str]
) -> None:
    for group in GROUPS:
        deadline = schedule.deadline(group)
        assert deadline is not None and schedule.reason is not None
        key = group_key(user.id, group, deadline)
        if now >= deadline:
            receipt = open_receipt(user.id, group, schedule.reason, key, now=now)
            if receipt.status in UNFINISHED:
                execute_receipt(receipt, now)
                report[f"deleted_{group}"] += receipt.status == "done"
        elif _send_warning(user, group, deadline, key, now):
            report["warnings"] += 1


def _send_warning(user: User, group: str, deadline: datetime, key: str, now: datetime) -> bool:
    """Send the most urgent warning that is due and not yet recorded; True when one went out."""
    due = [days for days in WARNING_DAYS if now >= deadline - timedelta(days=days)]
    if not due or not has_data(user.id, group):
        return False
    recorded = set(
        db.session.scalars(
            select(RetentionWarning.days_before).where(RetentionWarning.group_key == key)
        )
    )
    missing = [days for days in due if days not in recorded]
    if not missing:
        return False
    # A pass that missed the 7-day window records it as handled and sends only the 1-day one.
    for days in missing:
        db.session.add(
            RetentionWarning(
                user_id=user.id, group_key=key, days_before=days, deadline=deadline, sent_at=now
            )
        )
    try:
        db.session.flush()
        if min(missing) == min(due):
            queue_retention_warning(user.id, user.email, user.name, group, deadline)
        db.session.commit()
    except IntegrityError:  # a parallel pass recorded it first
        db.session.rollback()
        return False
    except Exception:
        db.session.rollback()
        raise
    return True


def has_data(user_id: int, group: str) -> bool:
    """True when the group holds something worth a warning (from the database alone)."""
    if group == "media" and db.session.scalar(
        select(Dataset.id).where(Dataset.user_id == user_id).limit(1)
    ):
        return True
    runs = db.session.scalars(
        select(TrainingRun).where(
            TrainingRun.user_id == user_id, TrainingRun.status.in_(FINISHED_STATUSES)
        )
    )
    if group == "media":
        return any(
            (run.artifacts or {}).get("samples") or (run.artifacts or {}).get(CAPTIONS_KIND)
            for run in runs
        )
    return any(run.artifacts for run in runs)


def expire_exports(now: datetime, report: Counter[str] | None = None) -> None:
    """Delete exports past their expiry, and give up on exports whose job died."""
    storage = get_storage()
    expired = db.session.scalars(
        select(DataExport).where(DataExport.status == "ready", DataExport.expires_at <= now)
    ).all()
    stale = db.session.scalars(
        select(DataExport).where(
            DataExport.status.in_(("queued", "building")),
            DataExport.created_at <= now - STALE_EXPORT,
        )
    ).all()
    for export in [*expired, *stale]:
        storage.delete_prefix(export.storage_prefix())
        if export.status == "ready":
            export.status, export.storage_key = "expired", None
        else:
            export.status, export.error = "failed", "The export did not finish. Request another."
        db.session.commit()
        if report is not None:
            report["exports_expired"] += 1
