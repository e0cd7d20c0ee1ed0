"""Turning an event into deliveries: one row per destination that wants it, then a job each.

Rows are written first and the jobs queued after, so a job Redis loses is found again by
the sweeper (jobs.webhooks.requeue_lost_deliveries) from the database.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import select

from app.accounts.models import User
from app.db_types import utcnow
from app.extensions import db
from app.queues import CPU_QUEUE, enqueue_task
from app.trainings.models import TrainingRun
from app.webhooks.models import RUN_EVENT_FILTERS, TEST_EVENT, WebhookDelivery, WebhookEndpoint
from app.webhooks.payloads import event_body, ping_data, run_data
from app.webhooks.services import WebhookError
from app.webhooks.signing import new_message_id

log = logging.getLogger(__name__)
DELIVERY_TASK = "jobs.webhooks.deliver"
# Resolving plus one POST with its timeout; the job gives up well before this.
DELIVERY_JOB_TIMEOUT_S = 120


def emit_run_event(run: TrainingRun, kind: str, live: dict[str, Any] | None = None) -> int:
    """Queue training.<kind> ("start", "progress", "completed") for every destination that
    wants it: the owner's subscribed endpoints and the run's own webhook. Returns how many."""
    event_type = f"training.{kind}"
    owner = db.session.get(User, run.user_id)
    if owner is None or owner.deletion_requested_at is not None:
        return 0  # an account being erased gets nothing more
    endpoints = db.session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.user_id == run.user_id, WebhookEndpoint.disabled.is_(False)
        )
    )
    targets: list[tuple[int | None, str]] = [
        (endpoint.id, endpoint.url) for endpoint in endpoints if event_type in endpoint.event_types
    ]
    if run.webhook and kind in (run.webhook_events_filter or RUN_EVENT_FILTERS):
        targets.append((None, run.webhook))
    if not targets:
        return 0
    body = event_body(event_type, run_data(run, live))
    deliveries = [
        _new_delivery(run.user_id, endpoint_id, url, event_type, body, run.id)
        for endpoint_id, url in targets
    ]
    db.session.commit()
    for delivery in deliveries:
        queue_delivery(delivery)
    return len(deliveries)


def emit_run_event_safely(run: TrainingRun, kind: str, live: dict[str, Any] | None = None) -> None:
    """emit_run_event for the training worker: a webhook problem is logged, never fails a run."""
    try:
        emit_run_event(run, kind, live)
    except Exception:
        db.session.rollback()
        log.warning("run %s: could not queue its %s webhooks", run.id, kind, exc_info=True)


def send_test_event(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Queue a "test" event to the endpoint, whatever it subscribed to."""
    if endpoint.disabled:
        raise WebhookError("Turn the endpoint on before sending it a test event.")
    body = event_body(TEST_EVENT, ping_data(endpoint.id))
    delivery = _new_delivery(endpoint.user_id, endpoint.id, endpoint.url, TEST_EVENT, body)
    db.session.commit()
    queue_delivery(delivery)
    return delivery


def _new_delivery(
    user_id: int,
    endpoint_id: int | None,
    url: str,
    event_type: str,
    body: str,
    run_id: int | None = None,
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        user_id=user_id,
        endpoint_id=endpoint_id,
        run_id=run_id,
        url=url,
        message_id=new_message_id(),
        event_type=event_type,
        body=body,
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
    )
    db.session.add(delivery)
    return delivery


def delivery_job_id(delivery: WebhookDelivery) -> str:
    """The RQ job id of the delivery's next attempt (the sweeper asks Redis for it)."""
    return attempt_job_id(delivery.id, delivery.attempts + 1)


def attempt_job_id(delivery_id: int, attempt: int) -> str:
    """The RQ job id of one attempt of a delivery."""
    return f"webhook-{delivery_id}-{attempt}"


def queue_delivery(delivery: WebhookDelivery, at: datetime | None = None) -> None:
    """Queue the delivery's next attempt, now or at `at`; a Redis outage is left to the sweeper."""
    try:
        enqueue_task(
            DELIVERY_TASK,
            delivery.id,
            queue=CPU_QUEUE,
            timeout_s=DELIVERY_JOB_TIMEOUT_S,
            job_id=delivery_job_id(delivery),
            description=f"webhook delivery {delivery.id}",
            at=at,
        )
    except RedisError:
        log.warning("webhook delivery %s: not queued (Redis); the sweeper retries", delivery.id)
