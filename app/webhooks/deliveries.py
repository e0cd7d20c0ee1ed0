"""The delivery log's rules: claiming an attempt, recording it, retrying with backoff, forgetting.

An attempt is claimed with one conditional UPDATE (attempts = n -> n + 1), so two jobs for the
same attempt (a duplicate, or the sweeper's requeue racing the original) send it once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from app.accounts.models import User
from app.extensions import db, get_settings
from app.webhooks.events import DELIVERY_JOB_TIMEOUT_S, queue_delivery
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks.services import ensure_run_secret

# A job may start a moment before its time when workers' clocks differ; anything earlier is a
# duplicate job, and the scheduled one will come.
EARLY_SLACK = timedelta(seconds=1)
# A claimed attempt whose job died is due again after this (the sweeper finds it).
CLAIM_LEASE = timedelta(seconds=DELIVERY_JOB_TIMEOUT_S + 60)
BATCH = 500


def cancel_reason(delivery: WebhookDelivery) -> str | None:
    """Why the delivery must not be sent at all any more, or None."""
    owner = db.session.get(User, delivery.user_id)
    if owner is None or owner.deletion_requested_at is not None:
        return "The account is being deleted."
    if delivery.endpoint_id is not None:
        endpoint = db.session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is None or endpoint.disabled:
            return "The endpoint was turned off."
    return None


def claim_attempt(delivery: WebhookDelivery, now: datetime) -> bool:
    """Take the delivery's next attempt for this job; False when it is not due or not ours."""
    if delivery.status != "pending":
        return False
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + EARLY_SLACK:
        return False
    claimed = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery.id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.attempts == delivery.attempts,
        )
        .values(
            attempts=delivery.attempts + 1, last_attempt_at=now, next_attempt_at=now + CLAIM_LEASE
        )
    ).rowcount
    db.session.commit()
    db.session.refresh(delivery)
    return bool(claimed)


def signing_secrets(delivery: WebhookDelivery, now: datetime) -> list[str]:
    """The secrets to sign with: the endpoint's, or the account's per-run webhook secret."""
    if delivery.endpoint_id is not None:
        endpoint = db.session.get(WebhookEndpoint, delivery.endpoint_id)
        assert endpoint is not None  # checked by cancel_reason just before
        return endpoint.signing_secrets(now)
    holder = ensure_run_secret(delivery.user_id)
    db.session.commit()
    return holder.signing_secrets(now)


def retry_wait(attempts_done: int) -> timedelta | None:
    """How long to wait after attempt number `attempts_done` failed; None after the last."""
    schedule = get_settings().webhook_retry_schedule_s
    if attempts_done > len(schedule):
        return None
    return timedelta(seconds=schedule[attempts_done - 1])


def record_attempt(
    delivery: WebhookDelivery,
    now: datetime,
    status_code: int | None,
    error: str | None,
    duration_ms: int = 0,
    retry: bool = True,
) -> str:
    """Log the claimed attempt and decide what follows: done, retry later, or give up."""
    db.session.add(
        WebhookAttempt(
            delivery_id=delivery.id, user_id=delivery.user_id, number=delivery.attempts,
            attempted_at=now, status_code=status_code, error=error, duration_ms=duration_ms,
        )
    )  # fmt: skip
    delivery.last_status_code, delivery.last_error = status_code, error
    endpoint = (
        db.session.get(WebhookEndpoint, delivery.endpoint_id) if delivery.endpoint_id else None
    )
    wait = retry_wait(delivery.attempts) if retry else None
    if status_code is not None and 200 <= status_code < 300:
        delivery.status, delivery.last_error = "succeeded", None
        if endpoint is not None:
            endpoint.failing_since = None
    elif status_code == 410:
        delivery.status = "failed"
        delivery.last_error = "The endpoint answered 410 Gone, so it gets no more deliveries."
        if endpoint is not None:
            endpoint.disabled = True
    elif wait is not None:
        delivery.next_attempt_at = now + wait
    else:
        delivery.status = "failed"
        if endpoint is not None and endpoint.failing_since is None:
            endpoint.failing_since = now
    if delivery.status != "pending":
        delivery.next_attempt_at, delivery.finished_at = None, now
    db.session.commit()
    if delivery.status == "pending":
        queue_delivery(delivery, at=delivery.next_attempt_at if wait else None)
    return delivery.status


def cancel_delivery(delivery: WebhookDelivery, reason: str, now: datetime) -> None:
    """Stop a delivery that must not be sent (endpoint off, account being deleted)."""
    delivery.status, delivery.last_error = "cancelled", reason
    delivery.next_attempt_at, delivery.finished_at = None, now
    db.session.commit()


def overdue_deliveries(now: datetime, grace: timedelta) -> list[WebhookDelivery]:
    """Pending deliveries whose attempt should have happened `grace` ago (their job was lost,
    or its worker died while it held the attempt)."""
    return list(
        db.session.scalars(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at < now - grace
            )
            .order_by(WebhookDelivery.id)
            .limit(BATCH)
        )
    )


def purge_delivery_log(now: datetime) -> int:
    """Delete deliveries (and their attempts) older than the log's retention; returns how many."""
    cutoff = now - timedelta(days=get_settings().webhook_log_retention_days)
    removed = 0
    while True:
        ids = list(
            db.session.scalars(
                select(WebhookDelivery.id).where(WebhookDelivery.created_at < cutoff).limit(BATCH)
            )
        )
        if not ids:
            return removed
        db.session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
        db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
        db.session.commit()
        removed += len(ids)
