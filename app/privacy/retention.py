"""The retention rules (seed 004, sections 4-5) and the hourly pass that applies them.

While any subscription keeps the person's access (or Stripe has not ended it yet), nothing is
touched. Once it ended (Stripe's ended_at), datasets and generated media go 30 days later and
LoRAs 90 days later; a new subscription before then cancels the deletion. People who never
subscribed are treated as on a trial that started when the account was created.

The same schedule feeds every page: one set to end (cancelled at the period end) already shows
the dates its end will bring ("subscription_ends"), which the pass leaves alone until it ended.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import User
from app.billing.models import Subscription
from app.billing.services import (
    ENDED_STATUSES,
    has_access,
    scheduled_end,
    settle_dev_subscription,
)
from app.datasets.models import Dataset
from app.db_types import utcnow
from app.extensions import db, get_redis, get_storage
from app.privacy.deletion import UNFINISHED, execute_receipt, open_receipt
from app.privacy.erasure import queue_erasure
from app.privacy.models import DataExport, DeletionReceipt, RetentionWarning
from app.privacy.notices import queue_retention_warning
from app.privacy_policy import LORA_RETENTION, MEDIA_RETENTION, WARNING_DAYS
from app.trainings.artifacts import CAPTIONS_KIND
from app.trainings.models import FINISHED_STATUSES, TrainingRun

log = logging.getLogger(__name__)
GROUPS = ("media", "loras")
# Statuses in which Stripe has not ended the subscription: the data stays.
NOT_ENDED = ("active", "trialing", "past_due", "unpaid", "paused")
USER_BATCH = 500
STALE_EXPORT = timedelta(days=1)
LOCK_KEY = "attune:retention:lock"
LOCK_TIMEOUT_S = 3 * 3600
STUCK_ERASURE = timedelta(hours=1)


@dataclass(frozen=True)
class RetentionSchedule:
    """When each group of the person's data is due for deletion; all None while kept."""

    reason: str | None = None  # "subscription_ended" or "no_subscription"
    since: datetime | None = None
    media_at: datetime | None = None
    loras_at: datetime | None = None
    as_of: datetime | None = None  # the moment the schedule was worked out for

    @property
    def is_kept(self) -> bool:
        """True while nothing is scheduled (a subscription that renews)."""
        return self.since is None

    @property
    def is_due(self) -> bool:
        """True once the pass acts on it: the subscription ended, or there never was one."""
        return self.reason in ("subscription_ended", "no_subscription")

    def deadline(self, group: str) -> datetime | None:
        """The deletion time of "media" or "loras"."""
        return self.media_at if group == "media" else self.loras_at

    def is_ahead(self, group: str) -> bool:
        """True while the group's deletion is still to come (pages say "will be deleted")."""
        deadline = self.deadline(group)
        return deadline is not None and (self.as_of is None or deadline > self.as_of)


def schedule_for(
    created_at: datetime, subscriptions: list[Subscription], now: datetime
) -> RetentionSchedule:
    """The rule itself, on plain values: see the module docstring."""
    ending = []
    for sub in subscriptions:
        if has_access(sub, now) or (sub.ended_at is None and sub.status in NOT_ENDED):
            end = scheduled_end(sub)
            if end is None:
                return RetentionSchedule()  # it renews: everything is kept
            ending.append(end)
    ended = [end for end in map(_ended_at, subscriptions) if end is not None]
    if ending:
        since, reason = max(ending + ended), "subscription_ends"
    elif ended:
        since, reason = max(ended), "subscription_ended"
    else:
        since, reason = created_at, "no_subscription"
    return RetentionSchedule(reason, since, since + MEDIA_RETENTION, since + LORA_RETENTION, now)


def _ended_at(sub: Subscription) -> datetime | None:
    """Stripe's ended_at; for an ended row missing it, the end of its last period."""
    if sub.ended_at is None and sub.status in ENDED_STATUSES:
        return sub.current_period_end
    return sub.ended_at


def retention_schedule(user: User, now: datetime | None = None) -> RetentionSchedule:
    """The person's deletion dates right now."""
    now = now or utcnow()
    query = select(Subscription).where(Subscription.user_id == user.id)
    return schedule_for(user.created_at, _settled(db.session.scalars(query), now), now)


def _settled(subscriptions: Iterable[Subscription], now: datetime) -> list[Subscription]:
    """Development-billing rows end or renew lazily (no Stripe): bring them up to `now`."""
    rows = list(subscriptions)
    for sub in rows:
        if sub.stripe_subscription_id is None:
            settle_dev_subscription(sub, now)
    return rows


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
            yield user, _settled(subs[user.id], now)
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
