"""Development billing: plans switched on and off locally, clearly labelled, for `make run`."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from app.billing.services import DEV_PERIOD, current_subscription, standing
from app.extensions import db
from app.trainings.models import TrainingRun
from tests.support.billing import add_usage, choose_plan, person, plan_card, press
from tests.support.web import csrf_token

EMAIL = "ada@example.com"


def test_activate_cancel_reactivate_switch_and_end_without_stripe(
    app: Flask, signed_in: FlaskClient
) -> None:
    page = signed_in.get("/billing").get_data(as_text=True)
    assert 'id="dev-billing-banner"' in page and 'id="no-subscription"' in page
    assert 'id="start-runs-blocked"' in page
    pricing = signed_in.get("/pricing").get_data(as_text=True)
    assert 'id="dev-billing-banner"' in pricing and "Activate Pro (development billing)" in pricing

    page = choose_plan(signed_in, "pro")
    assert 'id="plan-name">Pro<' in page and "Renews on" in page and "Nothing was charged" in page
    assert 'id="invoices-statement"' in page
    with app.app_context():
        assert standing(person(EMAIL)).reason == ""

    page = press(signed_in, "cancel")
    assert 'id="subscription-ends"' in page and 'id="delete-media"' in page
    with app.app_context():
        subscription = current_subscription(person(EMAIL))
        assert subscription is not None and subscription.cancel_at_period_end
        assert standing(person(EMAIL)).can_start, "the plan works until the period ends"

    page = press(signed_in, "reactivate")
    assert "Renews on" in page and 'id="deletion-dates"' not in page

    page = choose_plan(signed_in, "studio")
    assert 'id="plan-name">Studio<' in page
    with app.app_context():
        assert db.session.query(type(subscription)).count() == 1, "a switch, not a second plan"

    page = press(signed_in, "dev/end")
    assert 'id="subscription-ended"' in page and 'id="delete-loras"' in page
    with app.app_context():
        account = standing(person(EMAIL))
        allowed, reason = account.can_start, account.reason
        assert not allowed and "ended" in reason
    page = choose_plan(signed_in, "hobby")
    assert 'id="plan-name">Hobby<' in page and "Renews on" in page


def test_dev_periods_roll_over_and_a_cancelled_plan_ends_at_its_period_end(
    app: Flask, signed_in: FlaskClient
) -> None:
    choose_plan(signed_in, "hobby")
    with app.app_context():
        user = person(EMAIL)
        subscription = current_subscription(user)
        assert subscription is not None and subscription.current_period_end is not None
        first_end = subscription.current_period_end
        add_usage(user, 5 * 3600, first_end - timedelta(days=1))
        assert not standing(user, first_end - timedelta(hours=1)).can_start
        later = first_end + DEV_PERIOD + timedelta(days=3)
        rolled = current_subscription(user, later)
        assert rolled is not None and rolled.current_period_start == first_end + DEV_PERIOD
        assert standing(user, later).quota.used_s == 0
        db.session.commit()

        rolled.cancel_at_period_end = True
        db.session.commit()
        ended = current_subscription(user, rolled.current_period_end + timedelta(seconds=1))
        assert ended is not None and ended.status == "canceled"
        assert ended.ended_at == rolled.current_period_end


def test_forms_refuse_bad_input_with_a_message(app: Flask, signed_in: FlaskClient) -> None:
    page = choose_plan(signed_in, "platinum")
    assert "There is no such plan." in page
    page = choose_plan(signed_in, "pro", attempt="x")
    assert "Reload the page and try again." in page
    page = press(signed_in, "cancel")
    assert "no active subscription to cancel" in page
    page = press(signed_in, "reactivate")
    assert 'id="billing-error"' in page
    page = press(signed_in, "portal")
    assert "no billing portal" in page.lower()
    token = csrf_token(signed_in.get("/pricing").get_data(as_text=True))
    response = signed_in.post("/billing/checkout", data={"csrf_token": token, "plan": "pro",
                                                          "attempt": "abcdefgh1234"})  # fmt: skip
    assert response.status_code == 422 and "development billing" in response.get_data(as_text=True)
    webhook = signed_in.post("/billing/webhook", data="{}", content_type="application/json")
    assert webhook.status_code == 404 and "error" in webhook.get_json()
    with app.app_context():
        assert current_subscription(person(EMAIL)) is None


def test_pricing_is_public_and_the_page_shows_usage_per_day_and_per_run(
    app: Flask, signed_in: FlaskClient
) -> None:
    anonymous = app.test_client().get("/pricing")
    assert anonymous.status_code == 200
    text = anonymous.get_data(as_text=True)
    for words in ("5 GPU-hours", "20 GPU-hours", "75 GPU-hours", "100 GB storage",
                  "images + video", "Sign up to subscribe"):  # fmt: skip
        assert words in text
    # Each plan's price from the plan configuration, beside its GPU-hours.
    for name, price, hours in (("hobby", "$12", 5), ("pro", "$39", 20), ("studio", "$129", 75)):
        card = plan_card(text, name)
        assert f"<strong>{price}</strong> per month" in card and f"{hours} GPU-hours" in card

    choose_plan(signed_in, "pro")
    with app.app_context():
        user = person(EMAIL)
        subscription = current_subscription(user)
        assert subscription is not None and subscription.current_period_start is not None
        start = subscription.current_period_start
        run = TrainingRun(user_id=user.id, name="Corgi style", family="tiny-sd", config={},
                          queue="gpu-cpu", total_steps=10)  # fmt: skip
        db.session.add(run)
        db.session.commit()
        add_usage(user, 5400, start, key="a", run_id=run.id)
        add_usage(user, 1800, start + timedelta(minutes=1), key="b", run_id=run.id)
        add_usage(user, 999, start, key="c", charged=False)  # a platform fault: not charged
        add_usage(user, 3600, start - timedelta(days=40), key="d")  # an earlier period
    page = signed_in.get("/billing").get_data(as_text=True)
    assert re.search(r'id="quota-used" data-seconds="7200">2\.0 h<', page)
    assert 'id="quota-left" data-seconds="64800"' in page
    assert f'data-day="{start.date().isoformat()}" data-seconds="7200"' in page
    assert 'id="usage-runs"' in page and ">Corgi style</a>" in page
    assert re.search(r'data-seconds="7200">2\.0 h</td>', page)
