"""Data exports, deletion receipts and the retention warnings already sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from app import object_keys
from app.db_types import UTCDateTime, utcnow
from app.extensions import db

EXPORT_STATUSES = ("queued", "building", "ready", "failed", "expired")


class DataExport(db.Model):
    """One zip of everything held about a person, downloadable until it expires."""

    __tablename__ = "data_exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    storage_key: Mapped[str | None] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_pending(self) -> bool:
        """True while the export job has not finished."""
        return self.status in ("queued", "building")

    def storage_prefix(self) -> str:
        """Where this export's zip lives; built on the server only."""
        return object_keys.export_prefix(self.user_id, self.id)


class DeletionReceipt(db.Model):
    """One group of deleted data: what, when, why and how many stored objects.

    Written with status "deleting" before the first object goes (so a crashed job resumes the
    same receipt) and marked "done" at the end; group_key makes a second run find it.
    """

    __tablename__ = "deletion_receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    group_key: Mapped[str] = mapped_column(String(200), unique=True)
    scope: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[int | None]
    reason: Mapped[str] = mapped_column(String(40))
    what: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="deleting")
    object_count: Mapped[int] = mapped_column(default=0)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RetentionWarning(db.Model):
    """A warning e-mail sent (or deliberately skipped) before a scheduled deletion."""

    __tablename__ = "retention_warnings"
    __table_args__ = (
        UniqueConstraint("group_key", "days_before", name="uq_retention_warnings_group_days"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    group_key: Mapped[str] = mapped_column(String(200))
    days_before: Mapped[int]
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
