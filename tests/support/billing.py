"""Driving Stripe-mode billing: the plans it sells, webhook events signed as Stripe signs them,
checkout through the pricing page, and GPU-ledger rows as the training worker writes them."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import stripe
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from app.accounts.models import User
from app.billing.models import GpuUsage
from app.extensions import db
from tests.support.stripe_server import WEBHOOK_SECRET, StripeServer
from tests.support.web import csrf_token

PLANS_JSON = json.dumps(
    [
        {"name": "hobby", "stripe_price_id": "price_hobby"},
        {"name": "pro", "stripe_price_id": "price_pro", "overage_price_id": "price_overage"},
        {"name": "studio", "stripe_price_id": "price_studio", "overage_price_id": "price_overage"},
    ]
)


def deliver(
    client: FlaskClient,
    event: dict[str, Any],
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    body: str | None = None,
) -> TestResponse:
    """POST `event` to the webhook signed as Stripe does (optionally with another body)."""
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    return client.post(
        "/billing/webhook",
        data=body if body is not None else payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


def deliver_all(client: FlaskClient, events: list[dict[str, Any]]) -> None:
    """Deliver events in order; each must be accepted."""
    for event in events:
        response = deliver(client, event)
        assert response.status_code == 200, response.get_json()


def start_checkout(client: FlaskClient, plan: str) -> TestResponse:
    """Press the plan's Subscribe button on the pricing page."""
    html = client.get("/pricing").get_data(as_text=True)
    attempt = re.search(r'name="attempt" value="([^"]+)"', html)
    assert attempt, "pricing page offers no plan form"
    form = {"csrf_token": csrf_token(html), "plan": plan, "attempt": attempt.group(1)}
    return client.post("/billing/checkout", data=form)


def subscribe(
    client: FlaskClient, server: StripeServer, plan: str = "pro", period_start: int | None = None
) -> str:
    """Buy `plan` through Checkout and deliver Stripe's events; returns the subscription id."""
    response = start_checkout(client, plan)
    assert response.status_code == 303, response.get_data(as_text=True)
    session_id = response.headers["Location"].rsplit("/", 1)[-1]
    events = server.complete_checkout(session_id, period_start)
    deliver_all(client, events)
    return str(events[0]["data"]["object"]["subscription"])


def person(email: str = "payer@example.com") -> User:
    """The account with `email` (inside an app context)."""
    user = db.session.scalar(select(User).where(User.email == email))
    assert user is not None
    return user


def add_usage(
    user: User,
    seconds: float,
    started_at: datetime,
    key: str | None = None,
    run_id: int | None = None,
    charged: bool = True,
) -> GpuUsage:
    """Write one ledger row as the training worker does."""
    row = GpuUsage(
        user_id=user.id,
        run_id=run_id,
        segment_key=key or f"seg-{user.id}-{started_at.timestamp()}-{seconds}",
        gpu_seconds=seconds,
        charged=charged,
        started_at=started_at,
        ended_at=started_at,
    )
    db.session.add(row)
    db.session.commit()
    return row


def choose_plan(client: FlaskClient, plan: str, attempt: str | None = None) -> str:
    """Pick `plan` on the pricing page with the dev billing backend; the page it leads to."""
    html = client.get("/pricing").get_data(as_text=True)
    found = re.search(r'name="attempt" value="([^"]+)"', html)
    form = {"csrf_token": csrf_token(html), "plan": plan, "attempt": attempt or found.group(1)}  # type: ignore[union-attr]
    response = client.post("/billing/dev/activate", data=form)
    if response.status_code == 303:
        return client.get(response.headers["Location"]).get_data(as_text=True)
    return response.get_data(as_text=True)


def press(client: FlaskClient, action: str) -> str:
    """Press a billing page button (cancel, resume, ...); the page it leads to."""
    token = csrf_token(client.get("/billing").get_data(as_text=True))
    response = client.post(f"/billing/{action}", data={"csrf_token": token})
    assert response.status_code in (303, 422)
    if response.status_code == 303:
        return client.get(response.headers["Location"]).get_data(as_text=True)
    return response.get_data(as_text=True)


def plan_card(html: str, plan: str) -> str:
    """One plan's card on the pricing page."""
    found = re.search(rf'<section class="card plan" id="plan-{plan}".*?</section>', html, re.S)
    assert found, f"no card for {plan}"
    return re.sub(r"\s+", " ", found.group(0))
