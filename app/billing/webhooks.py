"""Stripe webhooks: every verified event is applied once, whatever the order it arrives in.

The event id goes into stripe_events in the same transaction as its effect, and is written
first: a twin delivered at the same moment waits on that unique row and then finds it taken.
Subscription state is re-read from Stripe rather than taken from the (possibly stale)
snapshot, except for deletions, which are final.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from app.accounts.mail import queue_email
from app.accounts.models import User
from app.billing import stripe_gateway as gateway
from app.billing.models import BillingCustomer, StripeEvent, Subscription
from app.billing.services import grace_ends, long_date
from app.billing.sync import from_timestamp, ref_id, sync_subscription
from app.extensions import db, get_settings

log = logging.getLogger(__name__)
HANDLED = (
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
)


def apply_stripe_event(event: dict[str, Any]) -> str:
    """Apply one verified event: "applied", "duplicate" or "ignored". GatewayError propagates."""
    if event["type"] not in HANDLED:
        log.info("stripe event %s of type %s is not used", event["id"], event["type"])
        return "ignored"
    try:
        outcome, subscription = _apply_and_commit(event)
    except IntegrityError:
        # A concurrent event created the same subscription (or customer) row first: once more.
        outcome, subscription = _apply_and_commit(event)
    if outcome == "applied" and subscription is not None:
        _notify(event, subscription)
    return outcome


def _apply_and_commit(event: dict[str, Any]) -> tuple[str, Subscription | None]:
    """One transaction: the event id and its effect together, or neither."""
    try:
        result = _apply(event)
        db.session.commit()
        return result
    except IntegrityError:
        db.session.rollback()
        if db.session.get(StripeEvent, event["id"]) is not None:
            return "duplicate", None  # its twin committed first
        raise
    except Exception:
        db.session.rollback()
        raise


def _apply(event: dict[str, Any]) -> tuple[str, Subscription | None]:
    """Record the event id, then its effect; the caller commits both together."""
    if db.session.get(StripeEvent, event["id"]) is not None:
        return "duplicate", None
    created = from_timestamp(event["created"])
    assert created is not None
    db.session.add(StripeEvent(id=event["id"], type=event["type"], created=created))
    db.session.flush()
    kind, obj = event["type"], event["data"]["object"]
    if kind == "checkout.session.completed":
        return "applied", _checkout_completed(obj, event)
    if kind == "customer.subscription.deleted":
        return "applied", sync_subscription(obj, event_created=created)
    subscription_id = obj["id"] if kind.startswith("customer.subscription.") else _invoice_sub(obj)
    if subscription_id is None:
        log.info("stripe event %s concerns no subscription", event["id"])
        return "applied", None
    data = gateway.retrieve_subscription(subscription_id)
    if kind == "invoice.paid":
        paid = _paid_period(obj)
        return "applied", sync_subscription(
            data, open_period=True, paid_period=paid, event_created=created
        )
    return "applied", sync_subscription(data, event_created=created)


def _checkout_completed(session: dict[str, Any], event: dict[str, Any]) -> Subscription | None:
    """A finished Checkout: link the customer to the person and load the new subscription."""
    subscription_id = ref_id(session.get("subscription"))
    if session.get("mode") != "subscription" or subscription_id is None:
        return None
    reference = str(session.get("client_reference_id") or "")
    user_id = int(reference) if reference.isdigit() else None
    customer = ref_id(session.get("customer"))
    if user_id is not None and customer and db.session.get(User, user_id) is not None:
        _link_customer(user_id, customer)
    data = gateway.retrieve_subscription(subscription_id)
    return sync_subscription(
        data, event_created=from_timestamp(event["created"]), user_hint=user_id
    )


def _link_customer(user_id: int, customer: str) -> None:
    """Remember the customer Checkout used, unless the person already has one stored."""
    stored = db.session.scalar(
        select(BillingCustomer).where(
            or_(BillingCustomer.user_id == user_id, BillingCustomer.stripe_customer_id == customer)
        )
    )
    if stored is None:
        db.session.add(BillingCustomer(user_id=user_id, stripe_customer_id=customer))
    elif (stored.user_id, stored.stripe_customer_id) != (user_id, customer):
        log.warning("checkout for user %s used customer %s, not the stored one", user_id, customer)


def _invoice_sub(invoice: dict[str, Any]) -> str | None:
    """The subscription an invoice bills (parent.subscription_details in current API versions)."""
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return ref_id(details.get("subscription")) or ref_id(invoice.get("subscription"))


def _paid_period(invoice: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """The latest service period a paid invoice's lines cover (the plan fee is billed for the
    period ahead, metered use for the one before); None when the invoice lists no periods."""
    periods = []
    for line in (invoice.get("lines") or {}).get("data") or []:
        period = line.get("period") or {}
        start, end = from_timestamp(period.get("start")), from_timestamp(period.get("end"))
        if start is not None and end is not None:
            periods.append((end, start))
    if not periods:
        return None
    end, start = max(periods)
    return start, end


def _notify(event: dict[str, Any], subscription: Subscription) -> None:
    """Tell the person when a payment failed (after the commit, so only once)."""
    if event["type"] != "invoice.payment_failed" or subscription.current_period_end is None:
        return
    user = db.session.get(User, subscription.user_id)
    if user is None:
        return
    body = (
        f"Hello {user.name},\n\nthe latest payment for your Attune subscription failed. "
        f"Please update your payment method: {get_settings().base_url.rstrip('/')}/billing\n\n"
        f"You can keep starting training runs until {long_date(grace_ends(subscription))}.\n"
    )
    try:
        queue_email(user.email, "Your Attune payment failed", body, account_id=user.id)
    except Exception:  # the state change is committed; a lost reminder must not undo it
        log.exception("could not queue the payment-failed e-mail for user %s", user.id)
