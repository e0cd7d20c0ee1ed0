"""Sweepers: clean up what interrupted uploads leave behind. Batched and re-runnable."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.datasets.models import DatasetItem
from app.db_types import utcnow
from app.extensions import db, get_storage
from jobs.context import app_context, job_logger

STALE_UPLOAD_AGE = timedelta(hours=24)
BATCH = 500


def abort_stale_uploads() -> int:
    """Abort uploads started over a day ago and never completed; drop their items."""
    with app_context():
        log = job_logger(__name__, "abort_stale_uploads")
        storage, cutoff, removed = get_storage(), utcnow() - STALE_UPLOAD_AGE, 0
        while True:
            items = db.session.scalars(
                select(DatasetItem)
                .where(DatasetItem.status == "uploading", DatasetItem.created_at < cutoff)
                .limit(BATCH)
            ).all()
            if not items:
                break
            for item in items:
                if item.upload_id:
                    storage.abort_multipart(item.storage_key, item.upload_id)
                storage.delete(item.storage_key)
                db.session.delete(item)
            db.session.commit()
            removed += len(items)
        for upload in storage.list_multipart_uploads("users/"):
            if upload.initiated < cutoff:
                storage.abort_multipart(upload.key, upload.upload_id)
        log.info("removed %d stale uploads", removed)
        return removed
