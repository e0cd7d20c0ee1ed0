"""Billing rules: which plan a person has now, what it allows, and when data would be deleted."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select

from app.accounts.models import User
from app.billing.models import Subscription
from app.billing.plans import Plan, parse_plans
from app.billing.usage import QuotaStatus, calendar_month, period_used_seconds
from app.db_types import utcnow
from app.extensions import db, get_settings
from app.privacy.policy import LORA_RETENTION, MEDIA_RETENTION

ACTIVE_STATUSES = ("active", "trialing")
ENDED_STATUSES = ("canceled", "incomplete_expired")
# Retention after a subscription ends (PRODUCT.md, seed 004 sections 4 and 5).
DEV_PERIOD = timedelta(days=30)


def plans() -> tuple[Plan, ...]:
    """Every plan this deployment sells."""
    return parse_plans(get_settings().plans_json)


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


def active_plan(user: User, now: datetime | None = None) -> Plan | None:
    """The plan whose limits apply to the person now, or None without an active subscription."""
    subscription = current_subscription(user, now)
    if not has_access(subscription, now):
        return None
    assert subscription is not None
    return get_plan(subscription.plan)


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


def deletion_dates(subscription: Subscription | None) -> dict[str, datetime | None]:
    """When each kind of data goes: media and datasets 30 days, LoRAs 90 days after the end.

    The end is Stripe's ended_at once the subscription has ended, else its scheduled end;
    every date is None while the subscription renews. Keys: ends_at, media, datasets, loras.
    """
    end = scheduled_end(subscription)
    if end is None:
        return {"ends_at": None, "media": None, "datasets": None, "loras": None}
    return {
        "ends_at": end,
        "media": end + MEDIA_RETENTION,
        "datasets": end + MEDIA_RETENTION,
        "loras": end + LORA_RETENTION,
    }


def quota_status(user: User, now: datetime | None = None, reserved_s: float = 0.0) -> QuotaStatus:
    """GPU time allowed, used (charged ledger rows) and left in the person's current period."""
    now = now or utcnow()
    subscription = current_subscription(user, now)
    plan = get_plan(subscription.plan) if has_access(subscription, now) and subscription else None
    if subscription and subscription.current_period_start and subscription.current_period_end:
        start, end = subscription.current_period_start, subscription.current_period_end
    else:
        start, end = calendar_month(now)
    return QuotaStatus(
        period_start=start,
        period_end=end,
        allowance_s=float(plan.gpu_seconds) if plan else 0.0,
        used_s=period_used_seconds(user.id, start),
        reserved_s=reserved_s,
        overage_allowed=bool(plan and plan.overage),
    )


def can_start_runs(
    user: User, now: datetime | None = None, reserved_s: float = 0.0
) -> tuple[bool, str]:
    """Whether the person may start a training run now, and if not, why (for the person)."""
    now = now or utcnow()
    subscription = current_subscription(user, now)
    if not has_access(subscription, now):
        return False, _no_access_reason(subscription)
    assert subscription is not None
    plan = get_plan(subscription.plan)
    if plan is None:
        return False, "Your plan is no longer offered. Choose another on the billing page."
    quota = quota_status(user, now, reserved_s)
    if not plan.overage and quota.left_s <= 0:
        return False, (
            f"You have used all {plan.gpu_hours:g} GPU-hours of your {plan.label} plan this "
            f"period. It renews with the next period ({long_date(quota.period_end)}); "
            "upgrade your plan for more now."
        )
    return True, ""


def long_date(moment: date) -> str:
    """A date as people read it: "5 December 2026"."""
    return f"{moment.day} {moment:%B %Y}"


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


def cancel_subscription_for_deletion(user: User) -> None:
    """Account deletion: end the subscription at once (in Stripe first); rows stay as records.

    Raises actions.BillingError while Stripe cannot be reached, so the deletion job retries.
    """
    from app.billing.actions import end_subscription_now  # actions builds on this module

    end_subscription_now(user)
