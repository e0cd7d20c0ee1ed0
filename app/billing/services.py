"""Billing rules: which plan a person has now, and the current quota period."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from app.accounts.models import User
from app.billing.models import Subscription
from app.billing.plans import Plan, parse_plans
from app.db_types import utcnow
from app.extensions import db, get_settings

ACTIVE_STATUSES = ("active", "trialing")


def plans() -> tuple[Plan, ...]:
    """Every plan this deployment sells."""
    return parse_plans(get_settings().plans_json)


def get_plan(name: str) -> Plan | None:
    """The plan called `name`, if it exists."""
    return next((plan for plan in plans() if plan.name == name), None)


def current_subscription(user: User) -> Subscription | None:
    """The person's most recent subscription, whatever its state."""
    query = select(Subscription).where(Subscription.user_id == user.id)
    return db.session.scalar(query.order_by(Subscription.id.desc()).limit(1))


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
        grace = timedelta(days=get_settings().past_due_grace_days)
        return (now or utcnow()) < subscription.current_period_end + grace
    return False


def active_plan(user: User, now: datetime | None = None) -> Plan | None:
    """The plan whose limits apply to the person now, or None without an active subscription."""
    subscription = current_subscription(user)
    if not has_access(subscription, now):
        return None
    assert subscription is not None
    return get_plan(subscription.plan)
