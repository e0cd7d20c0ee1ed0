"""Webhook rules: endpoints and their secrets, a run's own webhook, the delivery log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from app.accounts.models import User
from app.db_types import utcnow
from app.errors import NotFound
from app.extensions import db, get_settings
from app.webhooks.models import (
    EVENT_TYPES,
    RUN_EVENT_FILTERS,
    RunWebhookSecret,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.webhooks.signing import new_secret
from app.webhooks.ssrf import DestinationPolicy, UnsafeDestination, resolve_destination

if TYPE_CHECKING:  # annotations only: trainings sits above webhooks and calls set_run_webhook
    from app.trainings.models import TrainingRun

MAX_ENDPOINTS = 20
MAX_DESCRIPTION = 200
# A rotated secret keeps signing beside the new one this long, so receivers can switch over.
SECRET_GRACE = timedelta(hours=24)
LOG_LENGTH = 50


class WebhookError(Exception):
    """A webhook rule was broken; the message is for the person, `field` names the input."""

    def __init__(self, message: str, field: str = "url") -> None:
        super().__init__(message)
        self.message, self.field = message, field


def destination_policy() -> DestinationPolicy:
    """The operator's allowances (plain http, private addresses), from the settings."""
    settings = get_settings()
    return DestinationPolicy(settings.webhooks_allow_http, settings.webhooks_allow_private)


def check_webhook_url(url: Any, field: str = "url") -> str:
    """The URL, trimmed, once it is https and resolves to public addresses only."""
    if not isinstance(url, str):
        raise WebhookError("The webhook URL must be text.", field)
    try:
        resolve_destination(url, destination_policy())
    except UnsafeDestination as exc:
        raise WebhookError(str(exc), field) from exc
    return url.strip()


def check_event_types(raw: Iterable[Any]) -> list[str]:
    """The subscribed event types, in the catalogue's order; at least one."""
    chosen = set(raw)
    unknown = chosen - set(EVENT_TYPES)
    if unknown or not chosen:
        raise WebhookError(f"Choose one or more of: {', '.join(EVENT_TYPES)}.", "event_types")
    return [event for event in EVENT_TYPES if event in chosen]


def list_endpoints(user: User) -> list[WebhookEndpoint]:
    """The person's endpoints, oldest first."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.user_id == user.id)
    return list(db.session.scalars(query.order_by(WebhookEndpoint.id)))


def get_endpoint(user: User, endpoint_id: int) -> WebhookEndpoint:
    """The person's endpoint, or NotFound (also when it is someone else's)."""
    endpoint = db.session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.user_id == user.id
        )
    )
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id}")
    return endpoint


def create_endpoint(
    user: User, url: Any, description: str, event_types: Iterable[Any]
) -> tuple[WebhookEndpoint, str]:
    """Save a new endpoint; returns it with its secret, which is shown this once."""
    if len(list_endpoints(user)) >= MAX_ENDPOINTS:
        raise WebhookError(f"An account can have at most {MAX_ENDPOINTS} webhook endpoints.")
    endpoint = WebhookEndpoint(
        user_id=user.id,
        url=check_webhook_url(url),
        description=_description(description),
        event_types=check_event_types(event_types),
        secret=new_secret(),
    )
    db.session.add(endpoint)
    db.session.commit()
    return endpoint, endpoint.secret


def _description(text: str | None) -> str:
    text = (text or "").strip()
    if len(text) > MAX_DESCRIPTION:
        raise WebhookError(
            f"Keep the description under {MAX_DESCRIPTION} characters.", "description"
        )
    return text


def rotate_secret(holder: WebhookEndpoint | RunWebhookSecret) -> str:
    """A new secret for the holder; the old one keeps signing for SECRET_GRACE. Shown once."""
    holder.previous_secret, holder.previous_secret_expires_at = (
        holder.secret,
        utcnow() + SECRET_GRACE,
    )
    holder.secret = new_secret()
    db.session.commit()
    return holder.secret


def set_endpoint_disabled(endpoint: WebhookEndpoint, disabled: bool) -> None:
    """Pause an endpoint (its pending retries stop too) or turn it back on."""
    endpoint.disabled = disabled
    if not disabled:
        endpoint.failing_since = None
    db.session.commit()


def delete_endpoint(endpoint: WebhookEndpoint) -> None:
    """Remove the endpoint with its delivery log (children first: SQLite has no cascades)."""
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    db.session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)))
    db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    db.session.delete(endpoint)
    db.session.commit()


def run_secret(user_id: int) -> RunWebhookSecret | None:
    """The account's secret for per-run webhooks, if it has one yet."""
    return db.session.scalar(select(RunWebhookSecret).where(RunWebhookSecret.user_id == user_id))


def ensure_run_secret(user_id: int) -> RunWebhookSecret:
    """The account's per-run webhook secret, created the first time a run names a webhook."""
    existing = run_secret(user_id)
    if existing is not None:
        return existing
    holder = RunWebhookSecret(user_id=user_id, secret=new_secret())
    db.session.add(holder)
    db.session.flush()
    return holder


def new_run_secret(user_id: int) -> str:
    """The account's first per-run webhook secret, or a replacement for it; shown once."""
    holder = run_secret(user_id)
    if holder is None:
        holder = ensure_run_secret(user_id)
        db.session.commit()
        return holder.secret
    return rotate_secret(holder)


def check_events_filter(raw: Any) -> list[str]:
    """A run's webhook_events_filter: a list drawn from start, progress, completed (default all)."""
    if raw is None:
        return list(RUN_EVENT_FILTERS)
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise WebhookError(_filter_message(), "webhook_events_filter")
    if not raw or set(raw) - set(RUN_EVENT_FILTERS):
        raise WebhookError(_filter_message(), "webhook_events_filter")
    return [name for name in RUN_EVENT_FILTERS if name in raw]


def _filter_message() -> str:
    return f"webhook_events_filter takes a list of one or more of: {', '.join(RUN_EVENT_FILTERS)}."


def set_run_webhook(run: TrainingRun, url: Any, events_filter: Any = None) -> None:
    """Validate a run's `webhook` and `webhook_events_filter` and set them (not committed)."""
    if url in (None, ""):
        if events_filter is not None:
            raise WebhookError("Give a webhook URL for webhook_events_filter.", "webhook")
        run.webhook, run.webhook_events_filter = None, None
        return
    run.webhook = check_webhook_url(url, "webhook")
    run.webhook_events_filter = check_events_filter(events_filter)
    ensure_run_secret(run.user_id)


def delivery_log(
    user: User, endpoint: WebhookEndpoint | None, limit: int = LOG_LENGTH
) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    """The newest deliveries to an endpoint (None: to runs' own webhooks), with attempts."""
    query = select(WebhookDelivery).where(WebhookDelivery.user_id == user.id)
    if endpoint is None:
        query = query.where(WebhookDelivery.endpoint_id.is_(None))
    else:
        query = query.where(WebhookDelivery.endpoint_id == endpoint.id)
    deliveries = list(db.session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)))
    attempts: dict[int, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
    rows = db.session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(list(attempts)))
        .order_by(WebhookAttempt.number)
    )
    for attempt in rows:
        attempts[attempt.delivery_id].append(attempt)
    return [(delivery, attempts[delivery.id]) for delivery in deliveries]
