"""Pricing, the subscription page, Checkout and Portal hand-offs, and the Stripe webhook.

Billing's routes, outside app/billing: the subscription page's usage table names each run, so
they sit above trainings, which itself reads billing's rules (plans, standing, quota).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.billing import actions, services, usage, webhooks
from app.billing import stripe_gateway as gateway
from app.billing.deletion_dates import retention_schedule
from app.billing.forms import ActionForm, PlanForm
from app.billing.pricing import overage_price, plan_price
from app.db_types import utcnow
from app.extensions import csrf
from app.trainings.run_usage import usage_by_run

log = logging.getLogger(__name__)
bp = Blueprint("billing", __name__)
Page = tuple[str, int]


def _render(template: str, status: int = 200, **context: Any) -> Page:
    dev = not services.uses_stripe()
    return render_template(template, dev_billing=dev, **context), status


@bp.route("/pricing")
def pricing() -> Page:
    """The plans, for everyone."""
    return _pricing_page()


def _pricing_page(error: str | None = None, status: int = 200) -> Page:
    current = None
    if current_user.is_authenticated:
        subscription = services.current_subscription(current_user)
        current = subscription if services.has_access(subscription) else None
    plans = services.plans()
    return _render(
        "billing/pricing.html",
        status,
        plans=plans,
        prices={plan.name: plan_price(plan) for plan in plans},
        overage_prices={plan.name: overage_price(plan) for plan in plans},
        current=current,
        attempt=secrets.token_urlsafe(16),
        error=error,
    )


@bp.route("/billing")
@login_required
def index() -> Page:
    """Plan, status, dates, GPU time used and left, invoices, and the ways to change them."""
    return _billing_page()


def _billing_page(error: str | None = None, status: int = 200) -> Page:
    account = services.standing(current_user)
    subscription, quota, now = account.subscription, account.quota, account.now
    return _render(
        "billing/index.html",
        status,
        now=now,
        subscription=subscription,
        plan=services.get_plan(subscription.plan) if subscription else None,
        access=account.access,
        grace_ends=services.grace_ends(subscription)
        if subscription and subscription.status == "past_due" and subscription.current_period_end
        else None,
        ends_at=services.scheduled_end(subscription),
        schedule=retention_schedule(current_user, now),
        quota=quota,
        days=usage.usage_by_day(current_user.id, quota, now),
        runs=usage_by_run(current_user.id, quota),
        earlier=usage.usage_before(current_user.id, quota.period_start),
        invoices=actions.invoices(current_user),
        account=account,
        error=error,
    )


@bp.route("/billing/checkout", methods=["POST"])
@login_required
def checkout() -> Response | Page:
    """Send the person to Stripe Checkout for the chosen plan."""
    form = PlanForm()
    if not form.validate_on_submit():
        return _pricing_page(_first_error(form), 422)
    try:
        url = actions.start_checkout(current_user, form.plan.data or "", form.attempt.data or "")
    except actions.BillingError as exc:
        return _pricing_page(str(exc), 422)
    return redirect(url, code=303)


@bp.route("/billing/success")
@login_required
def success() -> Page:
    """After Checkout: wait for Stripe's webhook instead of trusting the redirect."""
    return _render("billing/success.html")


@bp.route("/api/billing/status")
@login_required
def status() -> Response:
    """The subscription's state, polled by the success page."""
    subscription = services.current_subscription(current_user)
    plan = services.get_plan(subscription.plan) if subscription else None
    return jsonify(
        status=subscription.status if subscription else None,
        active=services.has_access(subscription),
        plan=plan.name if plan else None,
        plan_label=plan.label if plan else None,
    )


@bp.route("/billing/portal", methods=["POST"])
@login_required
def portal() -> Response | Page:
    """Send the person to the Stripe Billing Portal."""
    return _act(lambda: redirect(actions.portal_url(current_user), code=303))


@bp.route("/billing/cancel", methods=["POST"])
@login_required
def cancel() -> Response | Page:
    """Stop renewing at the end of the period."""

    def run() -> Response:
        subscription = actions.cancel_at_period_end(current_user)
        end = services.scheduled_end(subscription) or utcnow()
        flash(f"Your subscription ends on {services.long_date(end)}.", "info")
        return redirect(url_for("billing.index"), code=303)

    return _act(run)


@bp.route("/billing/reactivate", methods=["POST"])
@login_required
def reactivate() -> Response | Page:
    """Keep the subscription after all."""

    def run() -> Response:
        actions.reactivate(current_user)
        flash("Your subscription will renew as usual.", "success")
        return redirect(url_for("billing.index"), code=303)

    return _act(run)


@bp.route("/billing/dev/activate", methods=["POST"])
@login_required
def dev_activate() -> Response | Page:
    """Development billing: start or switch a plan without payment."""
    form = PlanForm()
    if not form.validate_on_submit():
        return _pricing_page(_first_error(form), 422)
    try:
        subscription = actions.dev_activate(current_user, form.plan.data or "")
    except actions.BillingError as exc:
        return _pricing_page(str(exc), 422)
    plan = services.get_plan(subscription.plan)
    flash(f"Development billing: {plan.label if plan else ''} is active. Nothing was charged.")
    return redirect(url_for("billing.index"), code=303)


@bp.route("/billing/dev/end", methods=["POST"])
@login_required
def dev_end() -> Response | Page:
    """Development billing: end the plan now, to see what an ended subscription does."""

    def run() -> Response:
        if services.uses_stripe():
            raise actions.BillingError("Subscriptions end through the billing portal here.")
        actions.end_subscription_now(current_user)
        flash("Development billing: your plan has ended.", "info")
        return redirect(url_for("billing.index"), code=303)

    return _act(run)


@bp.route("/billing/webhook", methods=["POST"])
@csrf.exempt
def webhook() -> tuple[Response, int]:
    """Stripe's events: verified on the raw body, applied once, answered quickly."""
    if not services.uses_stripe():
        return jsonify(error="Stripe webhooks are not used with development billing."), 404
    try:
        event = gateway.parse_webhook(request.get_data(), request.headers.get("Stripe-Signature"))
    except gateway.WebhookSignatureError as exc:
        log.warning("rejected a webhook: %s", exc)
        return jsonify(error=f"Invalid webhook: {exc}"), 400
    try:
        outcome = webhooks.apply_stripe_event(event)
    except gateway.GatewayError:
        return jsonify(error="Stripe could not be reached; deliver this event again later."), 503
    log.info("stripe event %s (%s): %s", event["id"], event["type"], outcome)
    return jsonify(received=True, outcome=outcome), 200


def _act(run: Callable[[], Response]) -> Response | Page:
    """Check the button's CSRF form, run the action, and show its refusal on the page."""
    form = ActionForm()
    if not form.validate_on_submit():
        return _billing_page(_first_error(form), 422)
    try:
        return run()
    except actions.BillingError as exc:
        return _billing_page(str(exc), 422)


def _first_error(form: PlanForm | ActionForm) -> str:
    for errors in form.errors.values():
        return str(errors[0])
    return "The form could not be read. Reload the page and try again."
