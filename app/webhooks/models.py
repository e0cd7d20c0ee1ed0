"""Webhook endpoints, signing secrets, deliveries and their attempts (the delivery log)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db_types import UTCDateTime, utcnow
from app.extensions import db

# Event types an account endpoint can subscribe to; "test" is sent only by the button.
EVENT_TYPES = ("training.start", "training.progress", "training.completed")
TEST_EVENT = "test"
# A run's webhook_events_filter names events without the "training." prefix, like Replicate.
RUN_EVENT_FILTERS = ("start", "progress", "completed")
DELIVERY_STATUSES = ("pending", "succeeded", "failed", "cancelled")
MAX_URL_LENGTH = 2048


class SigningSecret:
    """A Standard Webhooks secret plus the one it replaced, still signed with for a while so
    receivers can switch without losing deliveries."""

    secret: Mapped[str] = mapped_column(String(80))
    previous_secret: Mapped[str | None] = mapped_column(String(80))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def signing_secrets(self, now: datetime | None = None) -> list[str]:
        """The secrets a delivery is signed with now: the current one, then the previous."""
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and expires > (now or utcnow()):
            return [self.secret, self.previous_secret]
        return [self.secret]


class WebhookEndpoint(SigningSecret, db.Model):
    """A URL of the person's that receives the events it subscribed to, for all their runs."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(MAX_URL_LENGTH))
    description: Mapped[str] = mapped_column(String(200), default="")
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(default=False)
    # Set when a delivery used up its attempts (or got 410); cleared by the next success.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )

    @property
    def state(self) -> str:
        """ "disabled", "failing" or "active", for the page."""
        if self.disabled:
            return "disabled"
        return "failing" if self.failing_since else "active"


class RunWebhookSecret(SigningSecret, db.Model):
    """The account's secret for the webhooks given per training run (`webhook` on a run)."""

    __tablename__ = "webhook_run_secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )


class WebhookDelivery(db.Model):
    """One event for one destination: the exact body, its message id, where it stands."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # NULL for a run's own webhook (signed with the account's RunWebhookSecret).
    endpoint_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_runs.id", ondelete="SET NULL"), index=True
    )
    url: Mapped[str] = mapped_column(String(MAX_URL_LENGTH))
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    event_type: Mapped[str] = mapped_column(String(40))
    # The JSON text exactly as signed and sent, the same on every attempt.
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookAttempt(db.Model):
    """One POST of a delivery: when, what came back (status code or error), how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column(default=0)
