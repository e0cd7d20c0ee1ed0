"""The webhook: signed, applied once, and right whatever order Stripe delivers in."""

from __future__ import annotations

import copy
import json
import threading
import time
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import func, select

from app.billing.models import StripeEvent
from app.billing.services import current_subscription
from app.billing.sync import sync_subscription
from app.extensions import db, get_redis
from tests.support.billing import deliver, deliver_all, person, subscribe
from tests.support.stripe_server import StripeServer


def _mail_jobs(app: Flask) -> list[Any]:
    with app.app_context():
        queue = Queue("cpu", connection=get_redis())
        return [
            job
            for job in queue.get_jobs()
            if job.func_name == "jobs.mail.send" and job.args[1] == "Your Attune payment failed"
        ]


def _recorded(app: Flask, event_id: str) -> int:
    with app.app_context():
        query = select(func.count()).select_from(StripeEvent).where(StripeEvent.id == event_id)
        return int(db.session.scalar(query) or 0)


def test_the_same_event_twice_at_the_same_moment_changes_state_once(
    stripe_app: Flask, stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    sub_id = subscribe(stripe_client, stripe_server, "pro")
    updated, failed = stripe_server.renew(sub_id, paid=False)
    deliver_all(stripe_client, [updated])
    # Stripe answers slowly, so the first delivery is still working when its twin arrives.
    stripe_server.slow("GET", "/v1/subscriptions/", 0.3)
    barrier, responses = threading.Barrier(2), []

    def send() -> None:
        client = stripe_app.test_client()
        barrier.wait()
        responses.append(deliver(client, failed))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status_code for r in responses] == [200, 200]
    assert sorted(r.get_json()["outcome"] for r in responses) == ["applied", "duplicate"]
    assert _recorded(stripe_app, failed["id"]) == 1
    mails = _mail_jobs(stripe_app)
    assert len(mails) == 1, "one payment-failed e-mail, not two"
    assert mails[0].args[0] == "payer@example.com"
    with stripe_app.app_context():
        subscription = current_subscription(person())
        assert subscription is not None and subscription.status == "past_due"
    # A later redelivery is a no-op too.
    assert deliver(stripe_client, failed).get_json()["outcome"] == "duplicate"
    assert len(_mail_jobs(stripe_app)) == 1


def test_deleted_arriving_before_updated_leaves_the_subscription_ended(
    stripe_app: Flask, stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    sub_id = subscribe(stripe_client, stripe_server, "pro")
    (cancelled,) = stripe_server.set_cancel_at_period_end(sub_id, True)
    (deleted,) = stripe_server.end(sub_id)
    assert cancelled["created"] < deleted["created"]
    deliver_all(stripe_client, [deleted, cancelled])

    with stripe_app.app_context():
        subscription = current_subscription(person())
        assert subscription is not None
        assert subscription.status == "canceled" and subscription.ended_at is not None
        assert subscription.last_event_at is not None
        assert int(subscription.last_event_at.timestamp()) == deleted["created"]
    page = stripe_client.get("/billing").get_data(as_text=True)
    assert 'id="subscription-ended"' in page


def test_a_stale_snapshot_cannot_revive_an_ended_subscription(
    stripe_app: Flask, stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    sub_id = subscribe(stripe_client, stripe_server, "hobby")
    stale = copy.deepcopy(stripe_server.subscriptions[sub_id])  # read just before it ended
    deliver_all(stripe_client, stripe_server.end(sub_id))
    with stripe_app.app_context():
        sync_subscription(stale)  # e.g. a slow re-read committing after the deletion
        db.session.commit()
        subscription = current_subscription(person())
        assert subscription is not None and subscription.status == "canceled"


def test_bad_signature_old_timestamp_or_changed_body_get_400_and_change_nothing(
    stripe_app: Flask, stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    sub_id = subscribe(stripe_client, stripe_server, "pro")
    (deleted,) = stripe_server.end(sub_id)
    stripe_server.subscriptions[sub_id]["status"] = "active"  # a re-read would not end it
    changed = json.dumps({**deleted, "type": "customer.subscription.deleted", "id": "evt_forged"})
    cases = {
        "wrong secret": {"secret": "whsec_not_ours"},
        "old timestamp": {"timestamp": int(time.time()) - 301},
        "changed body": {"body": changed},
    }
    for name, options in cases.items():
        response = deliver(stripe_client, deleted, **options)
        assert response.status_code == 400, name
        assert "error" in response.get_json(), name
    unsigned = stripe_client.post(
        "/billing/webhook", data=json.dumps(deleted), content_type="application/json"
    )
    assert unsigned.status_code == 400
    garbage = deliver(stripe_client, deleted, body="not json")
    assert garbage.status_code == 400

    assert _recorded(stripe_app, deleted["id"]) == 0
    with stripe_app.app_context():
        subscription = current_subscription(person())
        assert subscription is not None and subscription.status == "active"
    # The genuine delivery still works afterwards.
    assert deliver(stripe_client, deleted).status_code == 200


def test_unknown_event_types_are_answered_200(
    stripe_app: Flask, stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    event = stripe_server.event("customer.created", {"id": "cus_x", "object": "customer"})
    response = deliver(stripe_client, event)
    assert response.status_code == 200
    assert response.get_json()["outcome"] == "ignored"


def test_an_event_stripe_cannot_confirm_is_refused_for_redelivery(
    stripe_app: Flask, stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    sub_id = subscribe(stripe_client, stripe_server, "pro")
    _, paid = stripe_server.renew(sub_id)
    stripe_server.fail_next("GET", "/v1/subscriptions/", kind="error")
    stripe_server.fail_next("GET", "/v1/subscriptions/", kind="error")
    assert deliver(stripe_client, paid).status_code == 503
    assert _recorded(stripe_app, paid["id"]) == 0
    assert deliver(stripe_client, paid).get_json()["outcome"] == "applied"
