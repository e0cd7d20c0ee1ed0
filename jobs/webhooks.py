"""Webhook jobs: one delivery attempt (sign, check the address, POST pinned), and sweepers.

Delivery runs on the CPU queue, never in a training process. Each attempt re-resolves and
re-checks the URL's host (app.webhooks.ssrf), then connects only to the checked address.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app.db_types import utcnow
from app.extensions import db, get_settings
from app.webhooks.deliveries import (
    cancel_delivery,
    cancel_reason,
    claim_attempt,
    overdue_deliveries,
    purge_delivery_log,
    record_attempt,
    signing_secrets,
)
from app.webhooks.events import delivery_job_id, queue_delivery
from app.webhooks.models import WebhookDelivery
from app.webhooks.services import destination_policy
from app.webhooks.signing import signed_headers
from app.webhooks.ssrf import UnresolvableHost, UnsafeDestination, resolve_destination
from app.webhooks.transport import post_pinned
from jobs.context import app_context, job_logger

# A pending delivery this far past its time has lost its job (Redis lost it, or its worker died).
LOST_GRACE = timedelta(minutes=2)


def deliver(delivery_id: int) -> str:
    """Make the delivery's next attempt; returns its status afterwards (or "skipped")."""
    with app_context():
        log = job_logger(__name__, f"webhook delivery {delivery_id}")
        now = utcnow()
        delivery = db.session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.status != "pending":
            return "skipped"
        reason = cancel_reason(delivery)
        if reason:
            cancel_delivery(delivery, reason, now)
            log.info("cancelled: %s", reason)
            return "cancelled"
        if not claim_attempt(delivery, now):
            return "skipped"  # not due yet, or another job holds this attempt
        outcome = _attempt(delivery, now)
        log.info("attempt %d: %s (%s)", delivery.attempts, outcome, delivery.last_status_code)
        return outcome


def _attempt(delivery: WebhookDelivery, now: datetime) -> str:
    settings = get_settings()
    try:
        destination = resolve_destination(delivery.url, destination_policy())
    except UnresolvableHost as exc:
        return record_attempt(delivery, now, None, str(exc))
    except UnsafeDestination as exc:
        return record_attempt(delivery, now, None, f"Not sent: {exc}", retry=False)
    headers = signed_headers(
        signing_secrets(delivery, now), delivery.message_id, int(now.timestamp()), delivery.body
    )
    result = post_pinned(
        destination,
        delivery.body.encode(),
        headers,
        settings.webhook_timeout_s,
        settings.webhooks_ca_bundle or None,
    )
    return record_attempt(delivery, now, result.status_code, result.error, result.duration_ms)


def requeue_lost_deliveries(now: datetime | None = None) -> int:
    """Queue again the pending deliveries whose job is gone; returns how many."""
    from jobs.maintenance import job_alive

    with app_context():
        now, count = now or utcnow(), 0
        for delivery in overdue_deliveries(now, LOST_GRACE):
            if not job_alive(delivery_job_id(delivery)):
                queue_delivery(delivery)
                count += 1
        job_logger(__name__, "requeue_lost_deliveries").info("requeued %d", count)
        return count


def purge_webhook_log(now: datetime | None = None) -> int:
    """Forget deliveries older than ATTUNE_WEBHOOK_LOG_RETENTION_DAYS; returns how many."""
    with app_context():
        removed = purge_delivery_log(now or utcnow())
        job_logger(__name__, "purge_webhook_log").info("removed %d deliveries", removed)
        return removed
