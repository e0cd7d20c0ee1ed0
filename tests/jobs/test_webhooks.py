"""The webhook sweepers: deliveries whose job Redis lost (or whose worker died mid-attempt)
are queued again from the database; the log is forgotten after its retention."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from rq import Queue
from sqlalchemy import func, select

from app.db_types import utcnow
from app.extensions import db, get_redis
from app.webhooks.deliveries import claim_attempt
from app.webhooks.events import send_test_event
from app.webhooks.models import WebhookAttempt, WebhookDelivery
from jobs.webhooks import purge_webhook_log, requeue_lost_deliveries
from tests.app.privacy.support import make_user
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.webhooks import add_endpoint, attempts_of, deliver


def test_a_delivery_whose_job_redis_lost_is_queued_again(
    hooks_app: Flask, receiver: WebhookReceiver
) -> None:
    with hooks_app.app_context():
        delivery_id = send_test_event(add_endpoint(make_user(), receiver.url())).id
        get_redis().flushdb()  # Redis restarted empty
        assert requeue_lost_deliveries() == 0  # not overdue yet
        later = utcnow() + timedelta(minutes=5)
        assert requeue_lost_deliveries(later) == 1
        assert requeue_lost_deliveries(later) == 0  # its job is waiting now
        assert f"webhook-{delivery_id}-1" in Queue("cpu", connection=get_redis()).job_ids
    assert deliver(hooks_app, delivery_id) == "succeeded"
    assert len(receiver.received) == 1


def test_an_attempt_whose_worker_died_is_made_again_after_its_lease(
    hooks_app: Flask, receiver: WebhookReceiver
) -> None:
    with hooks_app.app_context():
        delivery_id = send_test_event(add_endpoint(make_user(), receiver.url())).id
        delivery = db.session.get(WebhookDelivery, delivery_id)
        assert claim_attempt(delivery, utcnow())  # ...and the work-horse is killed here
        get_redis().flushdb()
    assert deliver(hooks_app, delivery_id) == "skipped"  # the lease still holds
    with hooks_app.app_context():
        assert requeue_lost_deliveries(utcnow() + timedelta(minutes=2)) == 0
        assert requeue_lost_deliveries(utcnow() + timedelta(minutes=6)) == 1
        delivery = db.session.get(WebhookDelivery, delivery_id)
        delivery.next_attempt_at = utcnow()  # as the clock reaches it
        db.session.commit()
    assert deliver(hooks_app, delivery_id) == "succeeded"
    with hooks_app.app_context():
        assert attempts_of(delivery_id) == [(2, 200, None)]
    assert len(receiver.received) == 1


def test_the_log_is_forgotten_after_its_retention(
    hooks_app: Flask, receiver: WebhookReceiver
) -> None:
    with hooks_app.app_context():
        endpoint = add_endpoint(make_user(), receiver.url())
        old, recent = send_test_event(endpoint).id, send_test_event(endpoint).id
    for delivery_id in (old, recent):
        deliver(hooks_app, delivery_id)
    with hooks_app.app_context():
        db.session.get(WebhookDelivery, old).created_at = utcnow() - timedelta(days=31)
        db.session.commit()
        assert purge_webhook_log() == 1
        assert list(db.session.scalars(select(WebhookDelivery.id))) == [recent]
        assert db.session.scalar(select(func.count()).select_from(WebhookAttempt)) == 1


def test_the_sweepers_are_scheduled(redis_server) -> None:  # type: ignore[no-untyped-def]
    from redis import Redis

    from jobs.scheduler import build_scheduler

    jobs = {
        job.func_name: job for job in build_scheduler(Redis.from_url(redis_server.url)).get_jobs()
    }
    assert jobs["jobs.webhooks.requeue_lost_deliveries"].interval == 300
    assert jobs["jobs.webhooks.purge_webhook_log"].interval == 3600
