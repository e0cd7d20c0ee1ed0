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

from app.accounts.services import account_is_leaving
from app.db_types import utcnow
from app.extensions import db
from app.queues import CPU_QUEUE, enqueue_task
from app.webhooks.models import TEST_EVENT, WebhookDelivery, WebhookEndpoint
from app.webhooks.payloads import event_body, ping_data
from app.webhooks.services import WebhookError
from app.webhooks.signing import new_message_id

log = logging.getLogger(__name__)
DELIVERY_TASK = "jobs.webhooks.deliver"
# Resolving plus one POST with its timeout; the job gives up well before this.
DELIVERY_JOB_TIMEOUT_S = 120


def queue_event(
    user_id: int,
    event_type: str,
    data: dict[str, Any],
    run_url: str | None = None,
    run_id: int | None = None,
) -> int:
    """Queue the event for every endpoint of the owner that subscribed to its type, and for
    `run_url` (a run's own webhook); nothing for an account being erased. Returns how many."""
    if account_is_leaving(user_id):
        return 0  # an account being erased gets nothing more
    endpoints = db.session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.user_id == user_id, WebhookEndpoint.disabled.is_(False)
        )
    )
    targets: list[tuple[int | None, str]] = [
        (endpoint.id, endpoint.url) for endpoint in endpoints if event_type in endpoint.event_types
    ]
    if run_url:
        targets.append((None, run_url))
    if not targets:
        return 0
    body = event_body(event_type, data)
    deliveries = [
        _new_delivery(user_id, endpoint_id, url, event_type, body, run_id)
        for endpoint_id, url in targets
    ]
    db.session.commit()
    for delivery in deliveries:
        queue_delivery(delivery)
    return len(deliveries)


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
