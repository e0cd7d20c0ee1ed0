"""Delivering over real HTTP: signatures the standardwebhooks library accepts, retries with
backoff recorded in the log, 410, giving up, rotation, and nothing for a deleted account."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select
from standardwebhooks import WebhookVerificationError

from app.db_types import utcnow
from app.extensions import db, get_redis
from app.trainings.events import emit_run_event
from app.webhooks.events import send_test_event
from app.webhooks.models import WebhookDelivery, WebhookEndpoint
from app.webhooks.services import rotate_secret
from app.webhooks.signing import new_secret
from tests.app.privacy.support import add_run, make_user
from tests.support.apps import running_app
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.webhooks import (
    DEVELOPMENT,
    add_endpoint,
    attempts_of,
    deliver,
    only_delivery,
    verified,
)


def test_a_test_event_arrives_signed_as_the_standardwebhooks_library_verifies(
    hooks_app: Flask, receiver: WebhookReceiver
) -> None:
    with hooks_app.app_context():
        endpoint = add_endpoint(make_user(), receiver.url())
        secret, endpoint_id = endpoint.secret, endpoint.id
        delivery_id = send_test_event(endpoint).id
    assert deliver(hooks_app, delivery_id) == "succeeded"
    [request] = receiver.received
    event = verified(request, secret)
    assert event["type"] == "test" and event["data"]["endpoint_id"] == endpoint_id
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"].startswith("msg_")
    with pytest.raises(WebhookVerificationError):  # and a different secret does not verify it
        verified(request, new_secret())
    with hooks_app.app_context():
        delivery = only_delivery()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "succeeded", 1, 200,
        )  # fmt: skip
        assert attempts_of(delivery.id) == [(1, 200, None)]
    assert deliver(hooks_app, delivery_id) == "skipped"  # safe to run twice: sent once
    assert len(receiver.received) == 1


def test_a_500_then_a_200_gets_the_event_twice_and_the_log_shows_both(
    hooks_app: Flask, receiver: WebhookReceiver
) -> None:
    receiver.answers = [500, 200]
    with hooks_app.app_context():
        user_id = make_user()
        endpoint = add_endpoint(user_id, receiver.url())
        secret, endpoint_id = endpoint.secret, endpoint.id
        run_id = add_run(user_id)
        from app.trainings.models import TrainingRun

        assert emit_run_event(db.session.get(TrainingRun, run_id), "completed") == 1
        delivery_id = only_delivery().id
    assert deliver(hooks_app, delivery_id) == "pending"
    with hooks_app.app_context():
        delivery = db.session.get(WebhookDelivery, delivery_id)
        assert (delivery.attempts, delivery.last_status_code) == (1, 500)
        assert delivery.next_attempt_at is not None
    assert deliver(hooks_app, delivery_id) == "succeeded"
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # one message, retried
    assert verified(first, secret) == verified(second, secret)
    assert verified(second, secret)["type"] == "training.completed"
    with hooks_app.app_context():
        assert attempts_of(delivery_id) == [(1, 500, None), (2, 200, None)]
    page = _signed_in_page(hooks_app, user_id, f"/account/webhooks/{endpoint_id}")
    assert "HTTP 500" in page and "HTTP 200" in page and "training.completed" in page


def _signed_in_page(application: Flask, user_id: int, path: str) -> str:
    from tests.app.privacy.support import signed_in_as

    client = signed_in_as(application.test_client(), user_id)
    response = client.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_failures_retry_on_the_schedule_then_give_up_and_mark_the_endpoint_failing(
    hooks_app: Flask, receiver: WebhookReceiver
) -> None:
    receiver.answers = [503]
    with hooks_app.app_context():
        endpoint = add_endpoint(make_user(), receiver.url())
        delivery_id, endpoint_id = send_test_event(endpoint).id, endpoint.id
    # DEVELOPMENT has two retries: three attempts in all, then no more.
    assert [deliver(hooks_app, delivery_id) for _ in range(4)] == [
        "pending", "pending", "failed", "skipped",
    ]  # fmt: skip
    assert len(receiver.received) == 3
    with hooks_app.app_context():
        assert [code for _, code, _ in attempts_of(delivery_id)] == [503, 503, 503]
        assert db.session.get(WebhookEndpoint, endpoint_id).state == "failing"
        receiver.answers = [200]
        retry_id = send_test_event(db.session.get(WebhookEndpoint, endpoint_id)).id
    assert deliver(hooks_app, retry_id) == "succeeded"
    with hooks_app.app_context():
        assert db.session.get(WebhookEndpoint, endpoint_id).state == "active"  # a success clears it


def test_the_default_backoff_waits_and_schedules_the_retry(
    request: pytest.FixtureRequest, receiver: WebhookReceiver
) -> None:
    receiver.answers = [500]
    settings = {**DEVELOPMENT, "webhook_retry_schedule_s": (5, 300, 1800, 7200)}
    with running_app(request, "sqlite", settings) as application:
        with application.app_context():
            delivery_id = send_test_event(add_endpoint(make_user(), receiver.url())).id
        before = utcnow()
        assert deliver(application, delivery_id) == "pending"
        assert deliver(application, delivery_id) == "skipped"  # not due for 5 s: nothing sent
        assert len(receiver.received) == 1
        with application.app_context():
            delivery = db.session.get(WebhookDelivery, delivery_id)
            wait = delivery.next_attempt_at - before
            assert timedelta(seconds=4) < wait < timedelta(seconds=7)
            scheduled = ScheduledJobRegistry("cpu", connection=get_redis())
            assert f"webhook-{delivery_id}-2" in scheduled.get_job_ids()
            from app.webhooks.deliveries import retry_wait

            waits = [retry_wait(n) for n in range(1, 6)]
        assert waits[:4] == [timedelta(seconds=s) for s in (5, 300, 1800, 7200)]
        assert waits[4] is None


def test_410_gone_stops_and_turns_the_endpoint_off(
    hooks_app: Flask, receiver: WebhookReceiver
) -> None:
    receiver.answers = [410]
    with hooks_app.app_context():
        endpoint = add_endpoint(make_user(), receiver.url())
        delivery_id, endpoint_id = send_test_event(endpoint).id, endpoint.id
    assert deliver(hooks_app, delivery_id) == "failed"
    assert deliver(hooks_app, delivery_id) == "skipped"
    with hooks_app.app_context():
        assert db.session.get(WebhookEndpoint, endpoint_id).disabled is True
        assert "410" in (db.session.get(WebhookDelivery, delivery_id).last_error or "")
    assert len(receiver.received) == 1


def test_redirects_are_not_followed(hooks_app: Flask, receiver: WebhookReceiver) -> None:
    elsewhere = WebhookReceiver()
    try:
        receiver.answers, receiver.redirect_to = [307], elsewhere.url("/stolen")
        with hooks_app.app_context():
            delivery_id = send_test_event(add_endpoint(make_user(), receiver.url())).id
        assert deliver(hooks_app, delivery_id) == "pending"  # a 3xx is a failed attempt
        assert elsewhere.received == [] and len(receiver.received) == 1
    finally:
        elsewhere.stop()


def test_turning_an_endpoint_off_stops_its_pending_retries(
    hooks_app: Flask, receiver: WebhookReceiver
) -> None:
    receiver.answers = [500]
    with hooks_app.app_context():
        endpoint = add_endpoint(make_user(), receiver.url())
        delivery_id, endpoint_id = send_test_event(endpoint).id, endpoint.id
    assert deliver(hooks_app, delivery_id) == "pending"
    with hooks_app.app_context():
        from app.webhooks.services import set_endpoint_disabled

        set_endpoint_disabled(db.session.get(WebhookEndpoint, endpoint_id), True)
    assert deliver(hooks_app, delivery_id) == "cancelled"
    assert len(receiver.received) == 1


def test_an_account_being_deleted_gets_no_deliveries(
    hooks_app: Flask, receiver: WebhookReceiver
) -> None:
    from app.accounts.models import User
    from app.trainings.models import TrainingRun

    with hooks_app.app_context():
        user_id = make_user()
        add_endpoint(user_id, receiver.url())
        run = db.session.get(TrainingRun, add_run(user_id))
        run.webhook = receiver.url("/run")
        assert emit_run_event(run, "completed") == 2  # queued before the request...
        db.session.get(User, user_id).deletion_requested_at = utcnow()
        db.session.commit()
        pending = list(db.session.scalars(select(WebhookDelivery.id)))
        assert emit_run_event(run, "completed") == 0  # ...and nothing new after it
    assert [deliver(hooks_app, d) for d in pending] == ["cancelled", "cancelled"]
    assert receiver.received == []


def test_a_rotated_secret_signs_beside_the_new_one_for_a_day(
    hooks_app: Flask, receiver: WebhookReceiver
) -> None:
    with hooks_app.app_context():
        endpoint = add_endpoint(make_user(), receiver.url())
        old, endpoint_id = endpoint.secret, endpoint.id
        new = rotate_secret(endpoint)
        first = send_test_event(endpoint).id
    assert deliver(hooks_app, first) == "succeeded"
    with hooks_app.app_context():
        endpoint = db.session.get(WebhookEndpoint, endpoint_id)
        endpoint.previous_secret_expires_at = utcnow() - timedelta(seconds=1)  # a day later
        db.session.commit()
        second = send_test_event(endpoint).id
    assert deliver(hooks_app, second) == "succeeded"
    during, after = receiver.received
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert verified(during, old) and verified(during, new)
    assert verified(after, new)
    with pytest.raises(WebhookVerificationError):
        verified(after, old)


def test_a_receiver_that_never_answers_times_out_and_is_retried(
    request: pytest.FixtureRequest,
) -> None:
    from tests.support.network import BlackHole

    hole = BlackHole()  # accepts the connection, never answers
    port = hole.server.getsockname()[1]
    try:
        with running_app(request, "sqlite", {**DEVELOPMENT, "webhook_timeout_s": 1}) as app:
            with app.app_context():
                endpoint = add_endpoint(make_user(), f"http://127.0.0.1:{port}/hook")
                delivery_id = send_test_event(endpoint).id
            started = utcnow()
            assert deliver(app, delivery_id) == "pending"
            assert utcnow() - started < timedelta(seconds=5)
            with app.app_context():
                [(_, code, error)] = attempts_of(delivery_id)
            assert code is None and error == "No answer within 1 s."
    finally:
        hole.close()
