"""Buying and living with a plan through Stripe: Checkout, Portal, renewals, cancelling, ending."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.billing.actions import end_subscription_now
from app.billing.deletion_dates import retention_schedule
from app.billing.services import current_subscription, standing
from app.billing.stripe_gateway import STRIPE_API_VERSION
from tests.support.billing import deliver_all, person, start_checkout, subscribe
from tests.support.stripe_server import CheckoutClosed, StripeServer
from tests.support.web import csrf_token


def _press(client: FlaskClient, action: str) -> None:
    token = csrf_token(client.get("/billing").get_data(as_text=True))
    response = client.post(f"/billing/{action}", data={"csrf_token": token})
    assert response.status_code == 303, response.get_data(as_text=True)


def test_checkout_makes_the_customer_first_and_waits_for_the_webhook(
    stripe_app: Flask, stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    first = start_checkout(stripe_client, "pro")
    again = start_checkout(stripe_client, "pro")  # a second click on a fresh page
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"].startswith(stripe_server.url + "/c/pay/cs_test_")

    customers = stripe_server.calls("POST", "/v1/customers")
    sessions = stripe_server.calls("POST", "/v1/checkout/sessions")
    assert len(stripe_server.customers) == 1, "one customer per person, even on repeat"
    assert stripe_server.requests.index(customers[0]) < stripe_server.requests.index(sessions[0])
    with stripe_app.app_context():
        user_id = person().id
    params = sessions[0].params
    assert params["mode"] == "subscription"
    assert params["customer"] == next(iter(stripe_server.customers))
    assert params["client_reference_id"] == str(user_id)
    assert [line["price"] for line in params["line_items"]] == ["price_pro", "price_overage"]
    assert params["success_url"].endswith("/billing/success?session_id={CHECKOUT_SESSION_ID}")
    for call in customers + sessions:
        assert call.headers["Idempotency-Key"].startswith("attune-")
        assert call.headers["Stripe-Version"] == STRIPE_API_VERSION

    # Back from Checkout: the redirect alone activates nothing.
    page = stripe_client.get("/billing/success?session_id=cs_test_x").get_data(as_text=True)
    assert "Waiting for Stripe to confirm" in page
    assert stripe_client.get("/api/billing/status").get_json()["active"] is False

    # The second page closed the first: paying in two tabs cannot buy two subscriptions.
    first_id, again_id = (r.headers["Location"].rsplit("/", 1)[-1] for r in (first, again))
    assert first_id != again_id
    assert stripe_server.sessions[first_id]["status"] == "expired"
    with pytest.raises(CheckoutClosed):
        stripe_server.complete_checkout(first_id)
    deliver_all(stripe_client, stripe_server.complete_checkout(again_id))
    assert len(stripe_server.subscriptions) == 1
    assert stripe_client.get("/api/billing/status").get_json() == {
        "status": "active", "active": True, "plan": "pro", "plan_label": "Pro",
    }  # fmt: skip
    page = stripe_client.get("/billing").get_data(as_text=True)
    assert 'id="plan-name">Pro<' in page and "Renews on" in page
    assert "ATT-0001" in page and "49.00 USD" in page
    assert "development billing" not in page.lower()
    # Buying a second plan is refused (even from a stale page); changes go through the portal.
    pricing = stripe_client.get("/pricing").get_data(as_text=True)
    assert 'id="current-plan"' in pricing and "Switch in the billing portal" in pricing
    form = {"csrf_token": csrf_token(pricing), "plan": "studio", "attempt": "stale-page-1"}
    refused = stripe_client.post("/billing/checkout", data=form)
    assert refused.status_code == 422
    assert "Change plans in the billing portal" in refused.get_data(as_text=True)
    created = stripe_server.calls("POST", "/v1/checkout/sessions")
    assert [call.path for call in created].count("/v1/checkout/sessions") == 2


def test_a_double_submitted_checkout_form_gets_the_same_open_page(
    stripe_app: Flask, stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    html = stripe_client.get("/pricing").get_data(as_text=True)
    attempt = re.search(r'name="attempt" value="([^"]+)"', html)
    assert attempt
    form = {"csrf_token": csrf_token(html), "plan": "pro", "attempt": attempt.group(1)}
    first, second = (stripe_client.post("/billing/checkout", data=form) for _ in range(2))
    assert first.headers["Location"] == second.headers["Location"]
    session_id = first.headers["Location"].rsplit("/", 1)[-1]
    assert stripe_server.sessions[session_id]["status"] == "open"
    deliver_all(stripe_client, stripe_server.complete_checkout(session_id))
    assert stripe_client.get("/api/billing/status").get_json()["active"] is True


def test_subscribe_upgrade_cancel_reactivate_renew_and_end(
    stripe_app: Flask, stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    sub_id = subscribe(stripe_client, stripe_server, "pro")
    with stripe_app.app_context():
        first = current_subscription(person())
        assert first is not None and first.plan == "pro" and first.status == "active"
        period = (first.current_period_start, first.current_period_end)
        assert first.stripe_subscription_id == sub_id

    deliver_all(stripe_client, stripe_server.change_price(sub_id, "price_studio"))
    with stripe_app.app_context():
        upgraded = current_subscription(person())
        assert upgraded is not None and upgraded.plan == "studio"
        assert (upgraded.current_period_start, upgraded.current_period_end) == period

    portal = stripe_client.post(
        "/billing/portal",
        data={"csrf_token": csrf_token(stripe_client.get("/billing").get_data(as_text=True))},
    )
    assert portal.status_code == 303
    assert portal.headers["Location"].startswith(stripe_server.url + "/p/session/")

    _press(stripe_client, "cancel")
    assert stripe_server.subscriptions[sub_id]["cancel_at_period_end"] is True
    page = stripe_client.get("/billing").get_data(as_text=True)
    end, media, loras = period[1], period[1] + timedelta(days=30), period[1] + timedelta(days=90)
    assert f'ends on <time datetime="{end.isoformat()}"' in page
    assert media.isoformat() in page and loras.isoformat() in page
    assert 'id="reactivate-button"' in page

    _press(stripe_client, "reactivate")
    assert stripe_server.subscriptions[sub_id]["cancel_at_period_end"] is False
    page = stripe_client.get("/billing").get_data(as_text=True)
    assert "Renews on" in page and 'id="deletion-dates"' not in page

    deliver_all(stripe_client, stripe_server.renew(sub_id))
    with stripe_app.app_context():
        renewed = current_subscription(person())
        assert renewed is not None and renewed.current_period_start == period[1]

    # Cancelled in the portal, then the period runs out and Stripe ends it.
    deliver_all(stripe_client, stripe_server.set_cancel_at_period_end(sub_id, True))
    deliver_all(stripe_client, stripe_server.end(sub_id))
    with stripe_app.app_context():
        ended = current_subscription(person())
        assert ended is not None and ended.status == "canceled" and ended.ended_at is not None
        dates = retention_schedule(person())
        assert dates.media_at == ended.ended_at + timedelta(days=30)
        assert dates.loras_at == ended.ended_at + timedelta(days=90)
        account = standing(person())
        assert not account.can_start and "ended" in account.reason
    page = stripe_client.get("/billing").get_data(as_text=True)
    assert 'id="subscription-ended"' in page and 'id="choose-plan"' in page
    assert re.search(r"Subscribe again", page)
    # Still signed in and able to see everything.
    assert stripe_client.get("/dashboard").status_code == 200


def test_invoices_say_so_when_stripe_cannot_be_reached(
    stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    subscribe(stripe_client, stripe_server, "hobby")
    stripe_server.fail_next("GET", "/v1/invoices", kind="error")
    page = stripe_client.get("/billing")
    assert page.status_code == 200
    assert 'id="invoices-unavailable"' in page.get_data(as_text=True)


def test_account_deletion_can_end_the_subscription_at_once(
    stripe_app: Flask, stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    sub_id = subscribe(stripe_client, stripe_server, "studio")
    with stripe_app.app_context():
        end_subscription_now(person())
        ended = current_subscription(person())
        assert ended is not None and ended.status == "canceled" and ended.ended_at is not None
        assert end_subscription_now(person()) is ended, "a second call changes nothing"
    assert stripe_server.subscriptions[sub_id]["status"] == "canceled"
    assert len(stripe_server.calls("DELETE", f"/v1/subscriptions/{sub_id}")) == 1
    # Stripe's own deletion event arrives later and agrees.
    snapshot = stripe_server.subscriptions[sub_id]
    deliver_all(stripe_client, [stripe_server.event("customer.subscription.deleted", snapshot)])


def test_the_pricing_page_shows_each_plans_stripe_price_beside_its_gpu_hours(
    stripe_app: Flask, stripe_server: StripeServer
) -> None:
    from tests.support.billing import plan_card

    stripe_server.set_price("price_hobby", 1500)
    stripe_server.set_price("price_pro", 4950, currency="eur")
    stripe_server.set_price("price_studio", 199000, interval="year")
    stripe_server.set_metered_price("price_overage", "0.05")
    client = stripe_app.test_client()
    html = client.get("/pricing").get_data(as_text=True)
    for plan, price, hours in (("hobby", "<strong>$15</strong> per month", 5),
                               ("pro", "<strong>€49.50</strong> per month", 20),
                               ("studio", "<strong>$1,990</strong> per year", 75)):  # fmt: skip
        card = plan_card(html, plan)
        assert price in card and f"{hours} GPU-hours" in card, card
        assert "development billing" not in card
    asked = len(stripe_server.calls("GET", "/v1/prices"))
    assert asked == 4  # three plans and the overage price they share
    client.get("/pricing")  # the prices are kept a while: the page does not wait on Stripe
    assert len(stripe_server.calls("GET", "/v1/prices")) == asked

    stripe_server.prices.clear()
    with stripe_app.app_context():
        stripe_app.extensions["attune.prices"].clear()
    html = client.get("/pricing").get_data(as_text=True)
    assert "Price shown at checkout" in plan_card(html, "hobby")  # not a 500, not a made-up price


def test_the_pricing_page_shows_what_an_hour_of_overage_costs(
    stripe_app: Flask, stripe_server: StripeServer
) -> None:
    from tests.support.billing import plan_card

    for plan in ("hobby", "pro", "studio"):
        stripe_server.set_price(f"price_{plan}", 1500)
    stripe_server.set_metered_price("price_overage", "0.0666666667")  # cents per GPU second
    client = stripe_app.test_client()
    html = client.get("/pricing").get_data(as_text=True)
    for plan in ("pro", "studio"):
        assert "billed per second, at <strong>$2.40</strong> per GPU-hour" in plan_card(html, plan)
    assert "No overage" in plan_card(html, "hobby") and "GPU-hour</li>" not in plan_card(
        html, "hobby"
    )
    # A price one number cannot say (tiered), or Stripe not knowing it: no made-up figure.
    stripe_server.prices["price_overage"].update(unit_amount_decimal=None, billing_scheme="tiered")
    with stripe_app.app_context():
        stripe_app.extensions["attune.prices"].clear()
    html = client.get("/pricing").get_data(as_text=True)
    assert "billed per second</li>" in plan_card(html, "pro")
