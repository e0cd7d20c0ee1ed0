"""Dataset rules: ownership, upload targets, completion and the hand-off to ingest."""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass

from sqlalchemy import func, select

from app.accounts.models import User
from app.datasets.models import Dataset, DatasetItem
from app.errors import NotFound
from app.extensions import db, get_settings, get_storage
from app.queues import CPU_QUEUE, enqueue_task
from storage import PartRef

# What an upload may be, by extension: (media kind, content type, largest size in bytes).
ACCEPTED_FILES = {
    ".jpg": ("image", "image/jpeg", 50 * 1024**2),
    ".jpeg": ("image", "image/jpeg", 50 * 1024**2),
    ".png": ("image", "image/png", 50 * 1024**2),
    ".webp": ("image", "image/webp", 50 * 1024**2),
}
PART_SIZE = 16 * 1024**2
SINGLE_PUT_LIMIT = PART_SIZE
INGEST_TIMEOUT_S = 600


class DatasetError(Exception):
    """A dataset rule was broken; the message is for the person."""


@dataclass(frozen=True)
class UploadTarget:
    """Where the browser sends one file's bytes."""

    item: DatasetItem
    method: str  # "single" or "multipart"
    urls: list[str]
    part_size: int


def list_datasets(user: User) -> list[Dataset]:
    """The person's datasets, newest first."""
    query = select(Dataset).where(Dataset.user_id == user.id).order_by(Dataset.id.desc())
    return list(db.session.scalars(query))


def get_dataset(user: User, dataset_id: int) -> Dataset:
    """The person's dataset, or NotFound."""
    dataset = db.session.scalar(
        select(Dataset).where(Dataset.id == dataset_id, Dataset.user_id == user.id)
    )
    if dataset is None:
        raise NotFound(f"dataset {dataset_id}")
    return dataset


def get_item(user: User, dataset_id: int, item_id: int) -> DatasetItem:
    """One item of the person's dataset, or NotFound."""
    dataset = get_dataset(user, dataset_id)
    item = db.session.scalar(
        select(DatasetItem).where(DatasetItem.id == item_id, DatasetItem.dataset_id == dataset.id)
    )
    if item is None:
        raise NotFound(f"item {item_id}")
    return item


def create_dataset(user: User, name: str, trigger_word: str | None = None) -> Dataset:
    """A new, empty dataset."""
    name = name.strip()
    if not name:
        raise DatasetError("Give the dataset a name.")
    dataset = Dataset(user_id=user.id, name=name[:120], trigger_word=(trigger_word or None))
    db.session.add(dataset)
    db.session.commit()
    return dataset


def item_counts(dataset: Dataset) -> dict[str, int]:
    """How many items the dataset has in each status."""
    rows = db.session.execute(
        select(DatasetItem.status, func.count())
        .where(DatasetItem.dataset_id == dataset.id)
        .group_by(DatasetItem.status)
    )
    return {status: count for status, count in rows}


def start_upload(user: User, dataset: Dataset, filename: str, size: int) -> UploadTarget:
    """Record a pending item and presign where its bytes go; refuses unsupported files."""
    display_name = posixpath.basename(filename.replace("\\", "/")).strip()[:255]
    extension = posixpath.splitext(display_name)[1].lower()
    if extension not in ACCEPTED_FILES:
        accepted = ", ".join(sorted(ACCEPTED_FILES))
        raise DatasetError(f"“{display_name or filename}” is not a supported file ({accepted}).")
    media_kind, content_type, max_size = ACCEPTED_FILES[extension]
    if size <= 0:
        raise DatasetError(f"“{display_name}” is empty.")
    if size > max_size:
        raise DatasetError(f"“{display_name}” is larger than {max_size // 1024**2} MB.")
    item = DatasetItem(
        dataset_id=dataset.id,
        filename=display_name,
        content_type=content_type,
        media_kind=media_kind,
        size_bytes=size,
        storage_key="",
    )
    db.session.add(item)
    db.session.flush()
    item.storage_key = f"{dataset.storage_prefix()}items/{item.id}/original{extension}"
    target = _presign(item, size)
    db.session.commit()
    return target


def _presign(item: DatasetItem, size: int) -> UploadTarget:
    storage, expiry = get_storage(), get_settings().upload_url_expiry_s
    if size <= SINGLE_PUT_LIMIT:
        url = storage.presign_put(item.storage_key, item.content_type, expiry)
        return UploadTarget(item, "single", [url], size)
    item.upload_id = storage.create_multipart(item.storage_key, item.content_type)
    parts = math.ceil(size / PART_SIZE)
    urls = [
        storage.presign_part(item.storage_key, item.upload_id, number, expiry)
        for number in range(1, parts + 1)
    ]
    return UploadTarget(item, "multipart", urls, PART_SIZE)


def complete_upload(item: DatasetItem, etags: list[str]) -> DatasetItem:
    """Finish the item's upload, check what arrived and queue the ingest job."""
    if item.status != "uploading":
        raise DatasetError(f"“{item.filename}” was already uploaded.")
    storage = get_storage()
    if item.upload_id:
        refs = [PartRef(number=n, etag=etag) for n, etag in enumerate(etags, start=1)]
        storage.complete_multipart(item.storage_key, item.upload_id, refs)
        item.upload_id = None
    info = storage.stat(item.storage_key)
    if info is None:
        raise DatasetError(f"“{item.filename}” has not arrived yet; upload it again.")
    if info.size != item.size_bytes:
        storage.delete(item.storage_key)
        db.session.delete(item)
        db.session.commit()
        raise DatasetError(f"“{item.filename}” arrived incomplete; upload it again.")
    item.status = "uploaded"
    db.session.commit()
    enqueue_task("jobs.datasets.ingest", item.id, queue=CPU_QUEUE, timeout_s=INGEST_TIMEOUT_S)
    return item


def delete_dataset(dataset: Dataset) -> None:
    """Remove the dataset's rows and every object under its prefix."""
    get_storage().delete_prefix(dataset.storage_prefix())
    db.session.delete(dataset)
    db.session.commit()
