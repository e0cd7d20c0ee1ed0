"""The one module that talks to Stripe: a StripeClient on a pinned API version, plain dicts out.

Everything else in Attune calls these functions and never imports `stripe`, so the tests can
point ATTUNE_STRIPE_API_BASE at a local Stripe-shaped server and exercise the real client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import stripe
from flask import current_app

from app.extensions import get_settings
from app.plans import Plan

log = logging.getLogger(__name__)

# Pinned on purpose: bump it after reading Stripe's changelog, never implicitly. Period dates
# live on subscription items (items.data[].current_period_start/end) in this version.
STRIPE_API_VERSION = "2026-10-28.endive"
UNREACHABLE = "Stripe could not be reached. Please try again in a minute."


class GatewayError(Exception):
    """Stripe failed or could not be reached; str() is safe to show to the person."""


class WebhookSignatureError(Exception):
    """A webhook whose signature, timestamp or body does not check out."""


def get_client() -> stripe.StripeClient:
    """This app's StripeClient, created on first use."""
    client = current_app.extensions.get("attune.stripe")
    if client is None:
        settings = get_settings()
        base = {"api": settings.stripe_api_base.rstrip("/")} if settings.stripe_api_base else None
        client = stripe.StripeClient(
            settings.stripe_secret_key,
            stripe_version=STRIPE_API_VERSION,
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=settings.stripe_max_network_retries,
            http_client=stripe.RequestsClient(timeout=settings.stripe_timeout_s),
        )
        current_app.extensions["attune.stripe"] = client
    return client


def _request(what: str, call: Callable[[], Any]) -> Any:
    """Run one client call; Stripe's errors become GatewayError."""
    try:
        return call()
    except stripe.StripeError as exc:
        log.warning("stripe %s failed: %s (%s)", what, exc.user_message or exc, exc.code)
        if isinstance(exc, stripe.APIConnectionError):
            raise GatewayError(UNREACHABLE) from exc
        raise GatewayError("Stripe refused the request. Please try again.") from exc


def create_customer(user_id: int, email: str, name: str) -> str:
    """A new Stripe customer for the person; the same user id gives the same customer."""
    params: dict[str, Any] = {"email": email, "name": name, "metadata": {"user_id": str(user_id)}}
    options: Any = {"idempotency_key": f"attune-customer-{user_id}"}
    customer = _request(
        "customer create", lambda: get_client().v1.customers.create(params, options)
    )
    return str(customer.id)


def create_checkout_session(
    customer_id: str, user_id: int, plan: Plan, urls: tuple[str, str], attempt: str
) -> str:
    """A subscription-mode Checkout Session for `plan`; returns the URL to send the person to."""
    items: list[dict[str, Any]] = [{"price": plan.stripe_price_id, "quantity": 1}]
    if plan.overage and plan.overage_price_id:
        items.append({"price": plan.overage_price_id})  # metered: no quantity
    metadata = {"user_id": str(user_id), "plan": plan.name}
    params: Any = {
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": str(user_id),
        "line_items": items,
        "success_url": urls[0],
        "cancel_url": urls[1],
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
    }
    # The form's attempt token: a double-submitted form gets the same session back.
    options: Any = {"idempotency_key": f"attune-checkout-{user_id}-{plan.name}-{attempt}"}
    session = _request(
        "checkout", lambda: get_client().v1.checkout.sessions.create(params, options)
    )
    _expire_other_checkouts(customer_id, keep=str(session.id))
    return str(session.url)


def _expire_other_checkouts(customer_id: str, keep: str) -> None:
    """Close the customer's other open Checkout pages (another tab, an earlier plan choice),
    so that paying in two tabs cannot buy two subscriptions."""
    params: Any = {"customer": customer_id, "status": "open", "limit": 100}
    listed = _request("checkout list", lambda: get_client().v1.checkout.sessions.list(params))
    for other in listed.data:
        if other.id != keep:
            _expire_checkout(str(other.id))


def _expire_checkout(session_id: str) -> None:
    options: Any = {"idempotency_key": f"attune-expire-{session_id}"}
    try:
        _request(
            "checkout expire",
            lambda: get_client().v1.checkout.sessions.expire(session_id, None, options),
        )
    except GatewayError:  # completed or expired meanwhile: nothing left to close
        log.info("checkout session %s could not be expired", session_id)


def create_portal_session(customer_id: str, return_url: str) -> str:
    """A Billing Portal session; returns its URL."""
    params: Any = {"customer": customer_id, "return_url": return_url}
    session = _request("portal", lambda: get_client().v1.billing_portal.sessions.create(params))
    return str(session.url)


def retrieve_price(price_id: str) -> dict[str, Any]:
    """A price as Stripe has it: unit_amount, currency, recurring.interval."""
    options: Any = {"max_network_retries": 0}  # the public pricing page waits on this
    price = _request(
        "price retrieve", lambda: get_client().v1.prices.retrieve(price_id, None, options)
    )
    return price.to_dict()


def retrieve_subscription(subscription_id: str) -> dict[str, Any]:
    """The subscription as Stripe has it now."""
    service = get_client().v1.subscriptions
    subscription = _request("subscription retrieve", lambda: service.retrieve(subscription_id))
    return subscription.to_dict()


def update_subscription(subscription_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """Change a subscription (e.g. cancel_at_period_end) and return its new state."""
    service = get_client().v1.subscriptions
    subscription = _request(
        "subscription update",
        lambda: service.update(subscription_id, params),  # type: ignore[arg-type]
    )
    return subscription.to_dict()


def cancel_subscription(subscription_id: str) -> dict[str, Any]:
    """End a subscription now and return its final state."""
    service = get_client().v1.subscriptions
    options: Any = {"idempotency_key": f"attune-cancel-{subscription_id}"}
    subscription = _request(
        "subscription cancel", lambda: service.cancel(subscription_id, None, options)
    )
    return subscription.to_dict()


def list_invoices(customer_id: str, limit: int = 12) -> list[dict[str, Any]]:
    """The customer's latest invoices, newest first."""
    params: Any = {"customer": customer_id, "limit": limit}
    options: Any = {"max_network_retries": 0}  # a page waits on this: fail fast, say so
    invoices = _request("invoice list", lambda: get_client().v1.invoices.list(params, options))
    return [invoice.to_dict() for invoice in invoices.data]


def report_meter_event(customer_id: str, seconds: int, identifier: str, at: datetime) -> None:
    """Send GPU seconds to the meter; a repeated identifier is billed once by Stripe."""
    params = {
        "event_name": get_settings().stripe_meter_event_name,
        "identifier": identifier,
        "timestamp": int(at.timestamp()),
        "payload": {"stripe_customer_id": customer_id, "value": str(seconds)},
    }
    try:
        get_client().v1.billing.meter_events.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": f"attune-meter-{identifier}"},
        )
    except stripe.InvalidRequestError as exc:
        if exc.code == "resource_already_exists":
            log.info("meter event %s was already recorded", identifier)
            return
        log.warning("stripe meter event %s refused: %s", identifier, exc.user_message or exc)
        raise GatewayError("Stripe refused the meter event.") from exc
    except stripe.StripeError as exc:
        log.warning("stripe meter event %s failed: %s", identifier, exc)
        raise GatewayError(UNREACHABLE) from exc


def parse_webhook(payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event in a webhook body, after checking its signature and age on the raw bytes."""
    settings = get_settings()
    try:
        event = stripe.Webhook.construct_event(
            payload,
            signature,
            settings.stripe_webhook_secret,
            tolerance=settings.stripe_webhook_tolerance_s,
        )
    except stripe.SignatureVerificationError as exc:
        raise WebhookSignatureError(str(exc).split(".")[0]) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookSignatureError("The body is not a Stripe event.") from exc
    data = event.to_dict()
    if not isinstance(data.get("id"), str) or not isinstance(data.get("type"), str):
        raise WebhookSignatureError("The body is not a Stripe event.")
    return data
