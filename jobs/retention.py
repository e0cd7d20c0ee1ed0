"""The hourly retention pass and the deletions people ask for (rules: app.privacy)."""

from __future__ import annotations

from datetime import datetime

from app.privacy import retention
from app.privacy.services import run_requested_deletion
from jobs.context import app_context, job_logger


def apply_retention(now: datetime | None = None) -> dict[str, int]:
    """Warn, delete what is due, resume unfinished deletions, expire exports; re-runnable."""
    with app_context():
        report = retention.apply_retention(now)
        job_logger(__name__, "retention").info("done: %s", report)
        return report


def run_deletion(receipt_id: int) -> str:
    """Carry out one deletion a person asked for (a receipt in status pending or deleting)."""
    with app_context():
        status = run_requested_deletion(receipt_id)
        job_logger(__name__, f"deletion receipt {receipt_id}").info("status %s", status)
        return status
