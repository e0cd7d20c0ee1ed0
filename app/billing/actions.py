"""What a person does to their subscription: buy, manage, cancel, reactivate, end.

With Stripe billing each action goes through the gateway and the row follows Stripe's answer
(webhooks confirm it later); with development billing the row is changed here directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import User
from app.billing import stripe_gateway as gateway
from app.billing.models import BillingCustomer, Subscription
from app.billing.services import (
    DEV_PERIOD,
    ENDED_STATUSES,
    current_subscription,
    get_plan,
    has_access,
    long_date,
    scheduled_end,
    uses_stripe,
)
from app.billing.sync import from_timestamp, sync_subscription
from app.db_types import utcnow
from app.extensions import db, get_settings

log = logging.getLogger(__name__)
ZERO_DECIMAL_CURRENCIES = ("bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg",
                           "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf")  # fmt: skip


class BillingError(Exception):
    """A billing action cannot be done now; the message is for the person."""


@dataclass(frozen=True)
class InvoiceLine:
    """One invoice as the subscription page lists it."""

    number: str
    created: datetime | None
    amount: str
    status: str
    url: str


def customer_id(user: User) -> str | None:
    """The person's Stripe customer id, if one was created."""
    query = select(BillingCustomer.stripe_customer_id).where(BillingCustomer.user_id == user.id)
    return db.session.scalar(query)


def ensure_customer(user: User) -> str:
    """The person's Stripe customer, created (once, even when racing) before any Checkout."""
    existing = customer_id(user)
    if existing:
        return existing
    try:
        created = gateway.create_customer(user.id, user.email, user.name)
    except gateway.GatewayError as exc:
        raise BillingError(str(exc)) from exc
    db.session.add(BillingCustomer(user_id=user.id, stripe_customer_id=created))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # a concurrent request stored it (Stripe gave both the same id)
        existing = customer_id(user)
        if existing is None:
            raise
        return existing
    return created


def start_checkout(user: User, plan_name: str, attempt: str) -> str:
    """A Stripe Checkout URL for `plan_name`; the subscription starts when Stripe says so."""
    if not uses_stripe():
        raise BillingError("This installation uses development billing; activate a plan here.")
    plan = get_plan(plan_name)
    if plan is None or not plan.stripe_price_id:
        raise BillingError("That plan cannot be bought right now. Choose another one.")
    if has_access(current_subscription(user)):
        raise BillingError("You already have a subscription. Change plans in the billing portal.")
    customer = ensure_customer(user)
    base = get_settings().base_url.rstrip("/")
    urls = (f"{base}/billing/success?session_id={{CHECKOUT_SESSION_ID}}", f"{base}/pricing")
    try:
        return gateway.create_checkout_session(customer, user.id, plan, urls, attempt)
    except gateway.GatewayError as exc:
        raise BillingError(str(exc)) from exc


def portal_url(user: User) -> str:
    """A Billing Portal URL for plan changes, payment methods, invoices and cancelling."""
    if not uses_stripe():
        raise BillingError("Development billing has no billing portal.")
    customer = customer_id(user)
    if customer is None:
        raise BillingError("You have no billing account yet. Choose a plan first.")
    try:
        return gateway.create_portal_session(
            customer, get_settings().base_url.rstrip("/") + "/billing"
        )
    except gateway.GatewayError as exc:
        raise BillingError(str(exc)) from exc


def cancel_at_period_end(user: User, now: datetime | None = None) -> Subscription:
    """Stop renewing: the plan keeps working until the period ends."""
    subscription = current_subscription(user, now)
    if subscription is None or not has_access(subscription, now):
        raise BillingError("You have no active subscription to cancel.")
    end = scheduled_end(subscription)
    if end is not None:
        raise BillingError(f"Your subscription already ends on {long_date(end)}.")
    _change(subscription, {"cancel_at_period_end": True})
    return subscription


def reactivate(user: User, now: datetime | None = None) -> Subscription:
    """Undo a scheduled cancellation before the subscription ends."""
    subscription = current_subscription(user, now)
    if subscription is None or subscription.status in ENDED_STATUSES:
        raise BillingError("Your subscription has ended. Choose a plan to subscribe again.")
    if scheduled_end(subscription) is None:
        raise BillingError("Your subscription is not set to end; there is nothing to undo.")
    params: dict[str, Any] = {"cancel_at_period_end": False}
    if subscription.cancel_at is not None:
        params["cancel_at"] = ""  # Stripe clears a field sent empty
    _change(subscription, params)
    return subscription


def end_subscription_now(user: User, now: datetime | None = None) -> Subscription | None:
    """End the person's subscription at once (account deletion); nothing to do if none runs."""
    subscription = current_subscription(user, now)
    if subscription is None or subscription.status in ENDED_STATUSES:
        return subscription
    if subscription.stripe_subscription_id:
        try:
            data = gateway.cancel_subscription(subscription.stripe_subscription_id)
        except gateway.GatewayError as exc:
            raise BillingError(str(exc)) from exc
        sync_subscription(data)
    else:
        subscription.status, subscription.ended_at = "canceled", now or utcnow()
    db.session.commit()
    return subscription


def dev_activate(user: User, plan_name: str, now: datetime | None = None) -> Subscription:
    """Development billing: start a plan (or switch to it) without any payment."""
    if uses_stripe():
        raise BillingError("Plans are bought through Stripe Checkout here.")
    plan = get_plan(plan_name)
    if plan is None:
        raise BillingError("There is no such plan.")
    now = now or utcnow()
    subscription = current_subscription(user, now)
    if subscription is not None and has_access(subscription, now):
        if subscription.stripe_subscription_id:
            raise BillingError("You have a Stripe subscription; change it in the portal.")
        subscription.plan = plan.name
    else:
        subscription = Subscription(
            user_id=user.id,
            plan=plan.name,
            status="active",
            current_period_start=now,
            current_period_end=now + DEV_PERIOD,
            cancel_at_period_end=False,
        )
        db.session.add(subscription)
    db.session.commit()
    return subscription


def invoices(user: User) -> list[InvoiceLine] | None:
    """The person's latest invoices from Stripe; None when Stripe cannot be asked now."""
    customer = customer_id(user) if uses_stripe() else None
    if customer is None:
        return []
    try:
        found = gateway.list_invoices(customer)
    except gateway.GatewayError:
        return None
    return [_invoice_line(invoice) for invoice in found]


def _invoice_line(invoice: dict[str, Any]) -> InvoiceLine:
    currency = str(invoice.get("currency") or "usd")
    cents = int(invoice.get("amount_paid") or invoice.get("amount_due") or 0)
    amount = f"{cents:,}" if currency in ZERO_DECIMAL_CURRENCIES else f"{cents / 100:,.2f}"
    return InvoiceLine(
        number=str(invoice.get("number") or invoice.get("id") or ""),
        created=from_timestamp(invoice.get("created")),
        amount=f"{amount} {currency.upper()}",
        status=str(invoice.get("status") or ""),
        url=str(invoice.get("hosted_invoice_url") or ""),
    )


def _change(subscription: Subscription, params: dict[str, Any]) -> None:
    """Apply a change through Stripe (and take its answer) or, in dev billing, directly."""
    if subscription.stripe_subscription_id:
        try:
            data = gateway.update_subscription(subscription.stripe_subscription_id, params)
        except gateway.GatewayError as exc:
            raise BillingError(str(exc)) from exc
        sync_subscription(data)
    else:
        subscription.cancel_at_period_end = bool(params["cancel_at_period_end"])
        subscription.cancel_at = None
    db.session.commit()
