"""Training runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from app import object_keys
from app.db_types import UTCDateTime, utcnow
from app.extensions import db

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_STATUSES = ("succeeded", "failed", "cancelled")


class TrainingRun(db.Model):
    """One LoRA training job: its settings, its progress and what it produced."""

    __tablename__ = "training_runs"
    __table_args__ = (
        Index("ix_training_runs_user_status", "user_id", "status"),
        Index("ix_training_runs_family_queue", "family", "queue"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    family: Mapped[str] = mapped_column(String(40))
    preset: Mapped[str | None] = mapped_column(String(40))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    queue: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    step: Mapped[int] = mapped_column(default=0)
    total_steps: Mapped[int]
    loss: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)
    # True when a failure was the platform's fault, so it is not charged.
    platform_fault: Mapped[bool] = mapped_column(default=False)
    reserved_gpu_seconds: Mapped[int] = mapped_column(default=0)
    used_gpu_seconds: Mapped[float] = mapped_column(default=0.0)
    # Measured by the attempt that finished it (loop wall time per step, samples and checkpoints
    # included, and the rest of the attempt): new runs' estimates are calibrated from them.
    seconds_per_step: Mapped[float | None]
    startup_seconds: Mapped[float | None]
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    # The run this one continues from (its last checkpoint), or was duplicated from.
    parent_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_runs.id", ondelete="SET NULL")
    )
    # The finished run whose final LoRA weights this one starts from (a new run, at step 0).
    start_from_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_runs.id", ondelete="SET NULL")
    )
    # What its dataset was when the run started (app.datasets.services.dataset_revision): a
    # continue needs the same data. None for runs from before it was recorded.
    dataset_revision: Mapped[str | None] = mapped_column(String(64))
    # Quota period the reservation was taken from; the reservation is released exactly once.
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reservation_open: Mapped[bool] = mapped_column(default=False)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    artifacts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The run's own webhook (like Replicate's `webhook`) and the events it wants; see
    # app/webhooks.
    webhook: Mapped[str | None] = mapped_column(String(2048))
    webhook_events_filter: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_finished(self) -> bool:
        """True once the run can no longer change."""
        return self.status in FINISHED_STATUSES

    def storage_prefix(self) -> str:
        """Where this run's objects live; built on the server only."""
        return object_keys.run_prefix(self.user_id, self.id)


class QuotaPeriod(db.Model):
    """Per person and billing period: GPU seconds reserved by unfinished runs, and their count.

    Starting a run is one conditional UPDATE of this row, so starts racing for the last
    minutes or the last concurrent slot serialise on it and cannot both win.
    """

    __tablename__ = "quota_periods"
    __table_args__ = (UniqueConstraint("user_id", "period_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    reserved_seconds: Mapped[int] = mapped_column(default=0)
    active_runs: Mapped[int] = mapped_column(default=0)


class Generation(db.Model):
    """A "try it" request: prompts rendered with a run's LoRA, stored as generated media."""

    __tablename__ = "generations"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_runs.id", ondelete="SET NULL"), index=True
    )
    prompt: Mapped[str] = mapped_column(Text)
    strength: Mapped[float]
    seed: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="queued")
    error: Mapped[str | None] = mapped_column(Text)
    media_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    gpu_seconds: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def storage_prefix(self) -> str:
        """Generated media live under the person's media prefix."""
        return object_keys.generation_prefix(self.user_id, self.id)
