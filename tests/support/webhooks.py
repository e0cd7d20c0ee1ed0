"""Webhook helpers: the development switches, endpoint rows, running the delivery job here,
and reading deliveries, attempts and verified events back."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select
from standardwebhooks import Webhook

from app.extensions import db
from app.webhooks.models import EVENT_TYPES, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks.signing import new_secret
from tests.support.webhook_receiver import Received

# The development switches (the receiver is plain http on 127.0.0.1), and two retries without
# waiting so a test can run the delivery job again at once.
DEVELOPMENT = {
    "webhooks_allow_http": True,
    "webhooks_allow_private": True,
    "webhook_retry_schedule_s": (0, 0),
}


def add_endpoint(
    user_id: int, url: str, events: tuple[str, ...] = EVENT_TYPES, **values: Any
) -> WebhookEndpoint:
    """An endpoint row as a save under any settings leaves it (needs an app context)."""
    endpoint = WebhookEndpoint(
        user_id=user_id, url=url, description="", event_types=list(events), secret=new_secret(),
        **values,
    )  # fmt: skip
    db.session.add(endpoint)
    db.session.commit()
    return endpoint


def deliver(application: Flask, delivery_id: int) -> str:
    """Run the delivery job in this process, inside the test's app."""
    from jobs.webhooks import deliver as deliver_job

    with application.app_context():
        return deliver_job(delivery_id)


def only_delivery() -> WebhookDelivery:
    """The one delivery in the database (needs an app context)."""
    return db.session.scalars(select(WebhookDelivery)).one()


def attempts_of(delivery_id: int) -> list[tuple[int, int | None, str | None]]:
    """(number, status code, error) of each attempt, in order (needs an app context)."""
    rows = db.session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(WebhookAttempt.number)
    )
    return [(row.number, row.status_code, row.error) for row in rows]


def verified(received: Received, secret: str) -> dict[str, Any]:
    """The event as the standardwebhooks library's own verifier accepts it (or raises)."""
    return Webhook(secret).verify(received.body, received.headers)
