"""Dataset jobs on the CPU queue: ingest one uploaded file (image, clip or zip) and plan the
bucket preview. Each item ends ready or rejected with a reason; a rejected file's bytes go."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from sqlalchemy import select

from app import object_keys
from app.accounts.models import User
from app.datasets.limits import extension_of
from app.datasets.models import Dataset, DatasetItem
from app.datasets.previews import PREVIEW_TTL_S, pending_key, preview_key
from app.datasets.services import (
    apply_facts,
    delete_item_objects,
    storage_allowance,
    storage_used,
)
from app.extensions import db, get_redis, get_settings, get_storage
from jobs.context import app_context, job_logger
from jobs.ingest.archive import unpack_archive
from jobs.ingest.check import check_file
from jobs.ingest.facts import MediaFacts, Rejected
from storage import ObjectNotFound

log = logging.getLogger(__name__)

REPLACED_REASON = (
    "The file was replaced after its upload had finished, so it is not the file that arrived. "
    "Upload it again."
)


def ingest(item_id: int) -> str:
    """Validate one uploaded item; safe to run twice (a settled item is left as it is)."""
    with app_context():
        item = db.session.get(DatasetItem, item_id)
        if item is None or item.status != "uploaded":
            return "skipped"
        return ingest_item(item)


def ingest_item(item: DatasetItem) -> str:
    """Take the item's bytes out of the browser's reach, check them, and mark it ready or
    rejected (zips: unpack). A settled item is left as it is: its upload is gone."""
    if item.is_settled:
        return item.status
    logger = job_logger(__name__, f"ingest item {item.id}")
    scratch = get_settings().scratch_dir
    scratch.mkdir(parents=True, exist_ok=True)
    extension = extension_of(item.upload_key or "")
    with tempfile.TemporaryDirectory(prefix="attune-ingest-", dir=scratch) as tmp:
        local = Path(tmp) / f"upload{extension}"
        try:
            checked_key = fetch_upload(item, local)
        except ObjectNotFound:
            # Other storage errors fail the job instead, leaving the item to be ingested again.
            return reject_item(item, "The uploaded file is missing from storage; upload it again.")
        if local.stat().st_size != item.size_bytes:
            return reject_item(item, REPLACED_REASON)
        try:
            if item.media_kind == "archive":
                owner = db.session.get(User, item.dataset.user_id)
                assert owner is not None  # the dataset row cascades away with its owner
                allowance = storage_allowance(owner) - (storage_used(owner) - item.size_bytes)
                count = unpack_archive(item, local, Path(tmp), allowance, logger)
                logger.info("unpacked %d entries", count)
                return "unpacked"
            facts = check_file(local, extension)
        except Rejected as exc:
            logger.info("rejected: %s", exc)
            return reject_item(item, str(exc))
    accept_item(item, facts, checked_key, object_keys.item_thumbnail(item.object_prefix()))
    logger.info("ready: %s %dx%d", facts.media_kind, facts.width, facts.height)
    return "ready"


def fetch_upload(item: DatasetItem, local: Path) -> str:
    """Download the bytes to check into `local`; return the key they lie at in storage.

    The browser may still write to its upload key (S3 honours a presigned PUT until it
    expires), so media is first copied inside storage to a key nothing presigns, and that copy
    is what is checked and, once ready, trained on, captioned and exported. A zip is read once
    and unpacked from the worker's copy, so it needs no copy in storage.
    """
    storage, upload_key = get_storage(), item.upload_key
    if not upload_key:
        raise ObjectNotFound(f"item {item.id} has no upload key")
    if item.media_kind == "archive":
        storage.download_file(upload_key, local)
        return upload_key
    accepted_key = item.accepted_object_key(extension_of(upload_key))
    storage.copy(upload_key, accepted_key)
    storage.download_file(accepted_key, local)
    return accepted_key


def accept_item(item: DatasetItem, facts: MediaFacts, checked_key: str, thumbnail_key: str) -> None:
    """Store the thumbnail and record what ingest learnt; the item is ready, its data the
    checked copy, and the browser's upload is deleted."""
    storage = get_storage()
    storage.put(thumbnail_key, facts.thumbnail, "image/webp")
    item.storage_key, item.thumbnail_key = checked_key, thumbnail_key
    apply_facts(item, facts)
    db.session.commit()
    if item.upload_key and item.upload_key != checked_key:
        # After the commit: a crash here leaves only an unread object, which deleting the
        # item or dataset removes with its prefix. A PUT that recreates it is never read.
        storage.delete(item.upload_key)


def reject_item(item: DatasetItem, reason: str) -> str:
    """Delete the item's bytes and mark it rejected with the reason."""
    delete_item_objects(item)
    item.thumbnail_key = None
    item.status, item.reject_reason = "rejected", reason[:500]
    db.session.commit()
    return "rejected"


def bucket_preview(dataset_id: int, family: str, resolution: int) -> str:
    """Plan every ready item for family at resolution from the sizes ingest recorded; store the
    result in Redis for the page to poll."""
    with app_context():
        try:
            dataset = db.session.get(Dataset, dataset_id)
            return "skipped" if dataset is None else store_preview(dataset, family, resolution)
        finally:
            get_redis().delete(pending_key(dataset_id, family, resolution))


def store_preview(dataset: Dataset, family: str, resolution: int) -> str:
    """Plan the dataset's ready items and store the preview (or why it failed) for a day."""
    from jobs.ingest.buckets import plan_items

    items = list(
        db.session.scalars(
            select(DatasetItem)
            .where(DatasetItem.dataset_id == dataset.id, DatasetItem.status == "ready")
            .order_by(DatasetItem.id)
        )
    )
    try:
        payload = plan_items(items, family, resolution)
    except Exception as exc:
        log.exception("[bucket preview %s] failed", dataset.id)
        payload = {"error": f"The preview could not be planned: {exc}"}
    payload["item_ids"] = [item.id for item in items]
    key = preview_key(dataset.id, family, resolution)
    get_redis().set(key, json.dumps(payload), ex=PREVIEW_TTL_S)
    return "error" if "error" in payload else "ready"
