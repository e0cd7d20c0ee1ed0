"""Billing rules: which plan a person has now, what it allows, and the standing that follows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property

from sqlalchemy import select

from app.accounts.models import User
from app.billing.models import Subscription
from app.billing.usage import QuotaStatus, calendar_month, period_used_seconds
from app.db_types import utcnow
from app.extensions import db, get_settings
from app.plans import Plan

ACTIVE_STATUSES = ("active", "trialing")
ENDED_STATUSES = ("canceled", "incomplete_expired")
DEV_PERIOD = timedelta(days=30)  # a development-billing period (no Stripe to say)


def plans() -> tuple[Plan, ...]:
    """Every plan this deployment sells (parsed once, with the settings)."""
    return get_settings().plans


def get_plan(name: str) -> Plan | None:
    """The plan called `name`, if it exists."""
    return next((plan for plan in plans() if plan.name == name), None)


def uses_stripe() -> bool:
    """True when plans are bought through Stripe; False for development billing."""
    return get_settings().billing_mode == "stripe"


def current_subscription(user: User, now: datetime | None = None) -> Subscription | None:
    """The person's most recent subscription, whatever its state."""
    query = select(Subscription).where(Subscription.user_id == user.id)
    subscription = db.session.scalar(query.order_by(Subscription.id.desc()).limit(1))
    if subscription is not None and subscription.stripe_subscription_id is None:
        settle_dev_subscription(subscription, now or utcnow())
    return subscription


def settle_dev_subscription(subscription: Subscription, now: datetime) -> None:
    """Development billing has no Stripe to renew or end a plan: do it here (no commit).

    A plan set to cancel ends at its period end; any other active plan rolls into the next
    period. The result depends only on `now`, so repeating it changes nothing.
    """
    end = subscription.current_period_end
    if subscription.status not in ACTIVE_STATUSES or end is None or now < end:
        return
    if subscription.cancel_at_period_end:
        subscription.status, subscription.ended_at = "canceled", end
        return
    start = end + ((now - end) // DEV_PERIOD) * DEV_PERIOD
    subscription.previous_period_start = start - DEV_PERIOD
    subscription.current_period_start, subscription.current_period_end = start, start + DEV_PERIOD


def has_access(subscription: Subscription | None, now: datetime | None = None) -> bool:
    """True while the subscription entitles its owner to start work.

    Active and trialing subscriptions do; past_due keeps access for the grace period after
    the period ended; anything else (canceled, unpaid, incomplete) does not.
    """
    if subscription is None:
        return False
    if subscription.status in ACTIVE_STATUSES:
        return True
    if subscription.status == "past_due" and subscription.current_period_end is not None:
        return (now or utcnow()) < grace_ends(subscription)
    return False


def grace_ends(subscription: Subscription) -> datetime:
    """When a past_due subscription stops giving access."""
    assert subscription.current_period_end is not None
    return subscription.current_period_end + timedelta(days=get_settings().past_due_grace_days)


def scheduled_end(subscription: Subscription | None) -> datetime | None:
    """When the subscription ended, or is set to end; None while it simply renews."""
    if subscription is None:
        return None
    if subscription.ended_at is not None:
        return subscription.ended_at
    if subscription.status in ENDED_STATUSES:
        return subscription.current_period_end
    if subscription.cancel_at is not None:
        return subscription.cancel_at
    if subscription.cancel_at_period_end:
        return subscription.current_period_end
    return None


@dataclass
class Standing:
    """An account's standing at one moment: its subscription, the plan whose limits apply,
    this period's quota and whether runs may start. Built once per request (``standing``) and
    handed to every rule that needs it, so a request reads the subscription and the ledger once.
    """

    user_id: int
    now: datetime
    subscription: Subscription | None
    access: bool  # the subscription entitles its owner to start work now
    plan: Plan | None  # the plan whose limits apply now; None without access

    @cached_property
    def quota(self) -> QuotaStatus:
        """GPU time allowed and used (charged ledger rows) this period; reservations apart."""
        subscription = self.subscription
        if subscription and subscription.current_period_start and subscription.current_period_end:
            start, end = subscription.current_period_start, subscription.current_period_end
        else:
            start, end = calendar_month(self.now)
        return QuotaStatus(
            period_start=start,
            period_end=end,
            allowance_s=float(self.plan.gpu_seconds) if self.plan else 0.0,
            used_s=period_used_seconds(self.user_id, start),
            overage_allowed=bool(self.plan and self.plan.overage),
        )

    @cached_property
    def reason(self) -> str:
        """Why the person may not start a run or a render now (for the person); "" if they may."""
        if not self.access:
            return _no_access_reason(self.subscription)
        plan = self.plan
        if plan is None:
            return "Your plan is no longer offered. Choose another on the billing page."
        if not plan.overage and self.quota.left_s <= 0:
            return (
                f"You have used all {plan.gpu_hours:g} GPU-hours of your {plan.label} plan this "
                f"period. It renews with the next period ({long_date(self.quota.period_end)}); "
                "upgrade your plan for more now."
            )
        return ""

    @property
    def can_start(self) -> bool:
        """True when the person may start a training run or a render now."""
        return not self.reason


def standing(user: User, now: datetime | None = None) -> Standing:
    """The person's standing now (the quota and the reason are read on first use)."""
    now = now or utcnow()
    subscription = current_subscription(user, now)
    access = has_access(subscription, now)
    plan = get_plan(subscription.plan) if access and subscription is not None else None
    return Standing(user.id, now, subscription, access, plan)


def long_date(moment: date) -> str:
    """A date as people read it: "5 December 2026" (the one date format of every page)."""
    return f"{moment.day} {moment:%B %Y}"


def long_moment(moment: datetime) -> str:
    """A date with its time, where the hour matters: "5 December 2026, 14:05 UTC"."""
    return f"{long_date(moment)}, {moment.astimezone(UTC):%H:%M} UTC"


def _no_access_reason(subscription: Subscription | None) -> str:
    if subscription is None:
        return "Subscribe to a plan to start training runs."
    if subscription.status == "past_due":
        return (
            "Your last payment failed and the grace period is over. Update your payment "
            "method on the billing page to start runs again."
        )
    if subscription.status in ENDED_STATUSES:
        return "Your subscription has ended. Subscribe again to start training runs."
    return (
        f"Your subscription is not active ({subscription.status.replace('_', ' ')}). "
        "See the billing page."
    )
