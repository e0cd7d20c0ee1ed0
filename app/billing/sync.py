"""Copy a Stripe subscription's state onto the local Subscription row."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from app.billing.models import BillingCustomer, Subscription
from app.billing.services import ENDED_STATUSES, get_plan, plans
from app.extensions import db
from app.plans import plan_for_prices

log = logging.getLogger(__name__)


def from_timestamp(value: Any) -> datetime | None:
    """Stripe's Unix seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(int(value), UTC) if value else None


def ref_id(value: Any) -> str | None:
    """An id whether Stripe sent it bare or expanded."""
    if isinstance(value, dict):
        return value.get("id")
    return value if isinstance(value, str) else None


def _owner(data: dict[str, Any], user_hint: int | None) -> int | None:
    """Whose subscription this is: the customer we created, else the ids we sent along."""
    customer_id = ref_id(data.get("customer"))
    owner = db.session.scalar(
        select(BillingCustomer.user_id).where(BillingCustomer.stripe_customer_id == customer_id)
    )
    if owner is not None:
        return owner
    if user_hint is not None:
        return user_hint
    raw = (data.get("metadata") or {}).get("user_id", "")
    return int(raw) if str(raw).isdigit() else None


def _row_for(data: dict[str, Any], user_hint: int | None) -> Subscription | None:
    """The local row of a Stripe subscription, created on first sight."""
    row = db.session.scalar(
        select(Subscription).where(Subscription.stripe_subscription_id == data["id"])
    )
    if row is not None:
        return row
    user_id = _owner(data, user_hint)
    if user_id is None:
        log.warning("stripe subscription %s belongs to no known person", data["id"])
        return None
    row = Subscription(
        user_id=user_id,
        plan="unknown",
        status=data.get("status", "incomplete"),
        stripe_subscription_id=data["id"],
        cancel_at_period_end=False,
    )
    db.session.add(row)
    return row


def _plan_and_item(data: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The plan a subscription's prices name, and the item that carries its period."""
    items = (data.get("items") or {}).get("data") or []
    prices = [ref_id(item.get("price")) or "" for item in items]
    plan = plan_for_prices(plans(), prices)
    if plan is None:
        named = (data.get("metadata") or {}).get("plan")
        plan = get_plan(named) if named else None
    base = next(
        (item for item in items if plan and ref_id(item.get("price")) == plan.stripe_price_id),
        items[0] if items else {},
    )
    return (plan.name if plan else None), base


def sync_subscription(
    data: dict[str, Any],
    *,
    open_period: bool = False,
    paid_period: tuple[datetime, datetime] | None = None,
    event_created: datetime | None = None,
    user_hint: int | None = None,
) -> Subscription | None:
    """Apply Stripe's view of a subscription to its row (no commit).

    The period moves only when `open_period` (a paid invoice) or when the row has none yet,
    so GPU quota resets when the renewal is paid, not when the period merely rolls over. A
    paid invoice opens at most the period it paid for (`paid_period`, from its lines): an
    older invoice paid late must not open a newer period whose own invoice is still unpaid.
    An ended subscription never comes back: Stripe cannot revive one, so a stale snapshot
    arriving after the deletion is ignored.
    """
    row = _row_for(data, user_hint)
    if row is None:
        return None
    if event_created is not None:
        row.last_event_at = max(filter(None, (row.last_event_at, event_created)))
    if row.status in ENDED_STATUSES and data.get("status") not in ENDED_STATUSES:
        log.info("ignoring a stale snapshot of ended subscription %s", data["id"])
        return row
    plan_name, item = _plan_and_item(data)
    if plan_name:
        row.plan = plan_name
    elif row.plan == "unknown":
        log.error("subscription %s has prices that match no configured plan", data["id"])
    row.status = str(data.get("status") or row.status)
    row.stripe_customer_id = ref_id(data.get("customer")) or row.stripe_customer_id
    row.cancel_at_period_end = bool(data.get("cancel_at_period_end"))
    row.cancel_at = from_timestamp(data.get("cancel_at"))
    row.ended_at = from_timestamp(data.get("ended_at"))
    start = from_timestamp(item.get("current_period_start"))
    end = from_timestamp(item.get("current_period_end"))
    if open_period and paid_period is not None and end is not None and paid_period[1] < end:
        start, end = paid_period
    current = row.current_period_start
    if start and end and (current is None or (open_period and start >= current)):
        if current is not None and start > current:
            row.previous_period_start = current
        row.current_period_start, row.current_period_end = start, end
    return row
