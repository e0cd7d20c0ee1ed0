"""When a person's data is due for deletion: the retention rule, on their subscriptions.

While any subscription keeps the person's access (or Stripe has not ended it yet), nothing is
touched. Once it ended (Stripe's ended_at), datasets and generated media go 30 days later and
LoRAs 90 days later; a new subscription before then cancels the deletion. People who never
subscribed are treated as on a trial that started when the account was created.

The same schedule feeds every page and the hourly pass that acts on it (app.privacy.retention):
one set to end (cancelled at the period end) already shows the dates its end will bring
("subscription_ends"), which the pass leaves alone until it ended.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app.accounts.models import User
from app.billing.models import Subscription
from app.billing.services import (
    ENDED_STATUSES,
    has_access,
    scheduled_end,
    settle_dev_subscription,
)
from app.db_types import utcnow
from app.extensions import db
from app.privacy_policy import LORA_RETENTION, MEDIA_RETENTION

# Statuses in which Stripe has not ended the subscription: the data stays.
NOT_ENDED = ("active", "trialing", "past_due", "unpaid", "paused")


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
    return schedule_for(user.created_at, settled(db.session.scalars(query), now), now)


def settled(subscriptions: Iterable[Subscription], now: datetime) -> list[Subscription]:
    """Development-billing rows end or renew lazily (no Stripe): bring them up to `now`."""
    rows = list(subscriptions)
    for sub in rows:
        if sub.stripe_subscription_id is None:
            settle_dev_subscription(sub, now)
    return rows
