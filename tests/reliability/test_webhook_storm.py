"""1,000 Stripe webhook deliveries, duplicated and shuffled, from four threads at once: every
event is applied exactly once and each subscription ends exactly as Stripe has it.

Runs on PostgreSQL (the production database; concurrent twins race on the stripe_events
primary key there). Events are signed like Stripe's, against tests/support/stripe_server.py.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from rq import Queue
from sqlalchemy import func, select

from app.billing.models import StripeEvent, Subscription
from app.billing.sync import from_timestamp
from app.extensions import db, get_redis
from tests.support.accounts import seed_user, signed_in_client
from tests.support.apps import running_app
from tests.support.billing import PLANS_JSON, deliver, start_checkout
from tests.support.stripe_server import SECRET_KEY, WEBHOOK_SECRET, StripeServer

PEOPLE = 24
DELIVERIES = 1000
THREADS = 4
PRICE_PLAN = {"price_hobby": "hobby", "price_pro": "pro", "price_studio": "studio"}


@pytest.fixture
def storm_app(request: pytest.FixtureRequest, stripe_server: StripeServer) -> Iterator[Flask]:
    """The app in Stripe mode on PostgreSQL."""
    stripe_server.reset()
    settings = {
        "billing_mode": "stripe",
        "stripe_secret_key": SECRET_KEY,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "stripe_api_base": stripe_server.url,
        "stripe_timeout_s": 5,
        "stripe_max_network_retries": 1,
        "plans_json": PLANS_JSON,
    }
    with running_app(request, "postgres", settings) as application:
        yield application


def lifecycle(server: StripeServer, sub_id: str, rng: random.Random) -> list[dict[str, Any]]:
    """A few months of one subscription in Stripe; returns the events Stripe would send."""
    events: list[dict[str, Any]] = []
    for _ in range(rng.randint(3, 8)):
        step = rng.choice(["renew", "renew", "fail", "cancel", "uncancel", "upgrade"])
        if step == "renew":
            events += server.renew(sub_id, paid=True)
        elif step == "fail":
            events += server.renew(sub_id, paid=False)
        elif step in ("cancel", "uncancel"):
            events += server.set_cancel_at_period_end(sub_id, step == "cancel")
        else:
            events += server.change_price(sub_id, rng.choice(["price_pro", "price_studio"]))
    events += server.renew(sub_id, paid=True)  # the last renewal is paid: the period is known
    if rng.random() < 0.3:
        events += server.end(sub_id)
    return events


def test_a_thousand_duplicated_shuffled_events_apply_once_each(
    storm_app: Flask,
    stripe_server: StripeServer,
) -> None:
    rng = random.Random(9)
    unique: list[dict[str, Any]] = []
    subscriptions: dict[str, str] = {}  # Stripe subscription id -> e-mail
    for n in range(PEOPLE):
        email = f"payer{n}@example.com"
        seed_user(storm_app, email)
        client = signed_in_client(storm_app, email)
        response = start_checkout(client, rng.choice(["hobby", "pro", "studio"]))
        assert response.status_code == 303, response.text[-300:]
        session_id = response.headers["Location"].rsplit("/", 1)[-1]
        events = stripe_server.complete_checkout(session_id)
        sub_id = str(events[0]["data"]["object"]["subscription"])
        subscriptions[sub_id] = email
        unique += events + lifecycle(stripe_server, sub_id, rng)
    assert len(unique) < DELIVERIES
    deliveries = unique + [rng.choice(unique) for _ in range(DELIVERIES - len(unique))]
    rng.shuffle(deliveries)

    outcomes: Counter[str] = Counter()
    errors: list[str] = []
    lock = threading.Lock()

    def worker(share: list[dict[str, Any]]) -> None:
        client = storm_app.test_client()
        for event in share:
            response = deliver(client, event)
            with lock:
                if response.status_code != 200:
                    errors.append(f"{event['type']} {response.status_code} {response.text[:200]}")
                else:
                    outcomes[response.get_json()["outcome"]] += 1

    threads = [
        threading.Thread(target=worker, args=(deliveries[i::THREADS],)) for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors[:5]
    assert outcomes == {"applied": len(unique), "duplicate": DELIVERIES - len(unique)}

    with storm_app.app_context():
        recorded = db.session.scalar(select(func.count()).select_from(StripeEvent))
        assert recorded == len(unique)
        for sub_id, email in subscriptions.items():
            stripe_side = stripe_server.subscriptions[sub_id]
            row = db.session.scalar(
                select(Subscription).where(Subscription.stripe_subscription_id == sub_id)
            )
            assert row is not None, email
            base = stripe_side["items"]["data"][0]
            expected = {
                "status": stripe_side["status"],
                "plan": PRICE_PLAN[base["price"]["id"]],
                "cancel_at_period_end": bool(stripe_side["cancel_at_period_end"]),
                "ended_at": from_timestamp(stripe_side["ended_at"]),
                "current_period_start": from_timestamp(base["current_period_start"]),
                "current_period_end": from_timestamp(base["current_period_end"]),
            }
            actual = {name: getattr(row, name) for name in expected}
            assert actual == expected, (email, json.dumps(stripe_side, default=str)[:300])
        failed = sum(1 for e in unique if e["type"] == "invoice.payment_failed")
        mails = [
            job
            for job in Queue("cpu", connection=get_redis()).get_jobs()
            if job.func_name == "jobs.mail.send" and job.args[1] == "Your Attune payment failed"
        ]
        assert len(mails) == failed  # one e-mail per failed payment, never per delivery
    print(f"webhook storm: {len(unique)} events, {DELIVERIES} deliveries, {THREADS} threads")
