"""Builds a person's data export (rules and format: app.privacy.exports)."""

from __future__ import annotations

from app.privacy.exports import build_export
from jobs.context import app_context, job_logger


def build(export_id: int) -> str:
    """Zip everything about the export's owner into storage; a finished export is skipped."""
    with app_context():
        log = job_logger(__name__, f"export {export_id}")
        try:
            status = build_export(export_id)
        except Exception:
            log.exception("failed")
            raise
        log.info("status %s", status)
        return status
