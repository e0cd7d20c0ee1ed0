"""Dataset rules: ownership, settings, summaries, storage use and deletion."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import func, select

from app.accounts.models import User
from app.billing.services import Standing, standing
from app.datasets.limits import MB
from app.datasets.models import Dataset, DatasetItem
from app.errors import NotFound
from app.extensions import db, get_settings, get_storage

TRIGGER_PATTERN = r"^[\w-]+$"
MAX_NAME_CHARS = 120
MAX_TRIGGER_CHARS = 64
MAX_TEMPLATE_CHARS = 500
# Items on one page of the dataset page's grid: a phone scrolls through them, a large dataset
# does not make a page of thousands of thumbnails and caption boxes.
ITEMS_PER_PAGE = 60


class DatasetError(Exception):
    """A dataset rule was broken; the message is for the person, `field` names what to fix."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class DatasetSummary:
    """One dataset as the list shows it."""

    dataset: Dataset
    items: int
    ready: int
    rejected: int
    pending: int
    size_bytes: int

    @property
    def status(self) -> str:
        """'empty', 'processing', 'ready' or 'no usable items', for people."""
        if self.items == 0:
            return "empty"
        if self.pending:
            return "processing"
        return "ready" if self.ready else "no usable items"


def list_datasets(
    user: User, last_id: int | None = None, limit: int | None = None
) -> list[Dataset]:
    """The person's datasets, newest first; a page of them below `last_id` when given."""
    query = select(Dataset).where(Dataset.user_id == user.id).order_by(Dataset.id.desc())
    if last_id is not None:
        query = query.where(Dataset.id < last_id)
    return list(db.session.scalars(query.limit(limit)))


def summarize_datasets(user: User, datasets: list[Dataset] | None = None) -> list[DatasetSummary]:
    """The person's datasets (or the given ones) with item counts by status and stored size."""
    datasets = list_datasets(user) if datasets is None else datasets
    rows = db.session.execute(
        select(
            DatasetItem.dataset_id,
            DatasetItem.status,
            func.count(),
            func.coalesce(func.sum(DatasetItem.size_bytes), 0),
        )
        .join(Dataset)
        .where(Dataset.user_id == user.id, Dataset.id.in_([d.id for d in datasets]))
        .group_by(DatasetItem.dataset_id, DatasetItem.status)
    )
    counts: dict[int, dict[str, tuple[int, int]]] = {}
    for dataset_id, status, count, size in rows:
        counts.setdefault(dataset_id, {})[status] = (int(count), int(size))
    summaries = []
    for dataset in datasets:
        by_status = counts.get(dataset.id, {})
        number = {status: value[0] for status, value in by_status.items()}
        size = sum(value[1] for status, value in by_status.items() if status != "rejected")
        summaries.append(
            DatasetSummary(
                dataset=dataset,
                items=sum(number.values()),
                ready=number.get("ready", 0),
                rejected=number.get("rejected", 0),
                pending=number.get("uploading", 0) + number.get("uploaded", 0),
                size_bytes=size,
            )
        )
    return summaries


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


def create_dataset(
    user: User, name: str, trigger_word: str | None = None, caption_template: str | None = None
) -> Dataset:
    """A new, empty dataset."""
    dataset = Dataset(user_id=user.id)
    _apply_settings(dataset, name, trigger_word, caption_template)
    db.session.add(dataset)
    db.session.commit()
    return dataset


def update_dataset(
    dataset: Dataset, name: str, trigger_word: str | None, caption_template: str | None
) -> Dataset:
    """Rename the dataset and set its trigger word and caption template."""
    _apply_settings(dataset, name, trigger_word, caption_template)
    db.session.commit()
    return dataset


def _apply_settings(
    dataset: Dataset, name: str, trigger_word: str | None, caption_template: str | None
) -> None:
    """Check name, trigger word and caption template (the forms' rules, for every caller)."""
    name, trigger = name.strip(), (trigger_word or "").strip()
    template = (caption_template or "").strip()
    if not name:
        raise DatasetError("Give the dataset a name.", "name")
    if len(name) > MAX_NAME_CHARS:
        raise DatasetError(f"Keep the name under {MAX_NAME_CHARS} characters.", "name")
    if len(trigger) > MAX_TRIGGER_CHARS or (trigger and not re.match(TRIGGER_PATTERN, trigger)):
        raise DatasetError(
            f"Use letters, digits, - and _ only, at most {MAX_TRIGGER_CHARS}.", "trigger_word"
        )
    if len(template) > MAX_TEMPLATE_CHARS:
        raise DatasetError(
            f"Keep the caption template under {MAX_TEMPLATE_CHARS} characters.",
            "caption_template",
        )
    dataset.name, dataset.trigger_word = name, trigger or None
    dataset.caption_template = template or None


def item_counts(dataset: Dataset) -> dict[str, int]:
    """How many items the dataset has in each status."""
    rows = db.session.execute(
        select(DatasetItem.status, func.count())
        .where(DatasetItem.dataset_id == dataset.id)
        .group_by(DatasetItem.status)
    )
    return {status: count for status, count in rows}


def list_items(
    dataset: Dataset, last_id: int | None = None, limit: int | None = None
) -> list[DatasetItem]:
    """The dataset's items in upload order; a page of them after `last_id` when given."""
    query = select(DatasetItem).where(DatasetItem.dataset_id == dataset.id)
    if last_id is not None:
        query = query.where(DatasetItem.id > last_id)
    return list(db.session.scalars(query.order_by(DatasetItem.id).limit(limit)))


@dataclass(frozen=True)
class ItemPage:
    """One page of a dataset's items as the grid shows them, sorted by name."""

    items: list[DatasetItem]
    number: int  # from 1
    pages: int


def items_page(dataset: Dataset, number: int) -> ItemPage:
    """Page `number` of the dataset's items by name (a page past the end shows the last)."""
    where = DatasetItem.dataset_id == dataset.id
    total = db.session.scalar(select(func.count(DatasetItem.id)).where(where)) or 0
    pages = max(1, math.ceil(total / ITEMS_PER_PAGE))
    number = min(max(1, number), pages)
    query = (
        select(DatasetItem)
        .where(where)
        .order_by(func.lower(DatasetItem.filename), DatasetItem.id)
        .offset((number - 1) * ITEMS_PER_PAGE)
        .limit(ITEMS_PER_PAGE)
    )
    return ItemPage(list(db.session.scalars(query)), number, pages)


def delete_rejected_items(dataset: Dataset) -> int:
    """Remove every item ingest refused (rows, and any object left); return how many."""
    query = select(DatasetItem).where(
        DatasetItem.dataset_id == dataset.id, DatasetItem.status == "rejected"
    )
    rejected = list(db.session.scalars(query))
    for item in rejected:
        delete_item(item)
    return len(rejected)


def ready_item_ids(dataset: Dataset) -> list[int]:
    """Ids of the items a training run (and the bucket preview) would use."""
    query = select(DatasetItem.id).where(
        DatasetItem.dataset_id == dataset.id, DatasetItem.status == "ready"
    )
    return sorted(db.session.scalars(query))


def dataset_revision(dataset: Dataset) -> str:
    """A digest of what a run trains on: the ready items (id, size, caption), the trigger word
    and the caption template. It changes when any of them does."""
    digest = hashlib.sha256(f"{dataset.trigger_word}\0{dataset.caption_template}\n".encode())
    rows = db.session.execute(
        select(DatasetItem.id, DatasetItem.size_bytes, DatasetItem.caption)
        .where(DatasetItem.dataset_id == dataset.id, DatasetItem.status == "ready")
        .order_by(DatasetItem.id)
    )
    for item_id, size, caption in rows:
        digest.update(f"{item_id}\0{size}\0{caption}\n".encode())
    return digest.hexdigest()


def storage_used(user: User) -> int:
    """Bytes the person's items hold or have reserved (uploads in flight count)."""
    total = db.session.scalar(
        select(func.coalesce(func.sum(DatasetItem.size_bytes), 0))
        .join(Dataset)
        .where(Dataset.user_id == user.id, DatasetItem.status != "rejected")
    )
    return int(total or 0)


def storage_allowance(user: User, account: Standing | None = None) -> int:
    """Bytes the person may store: the plan's storage, or the free allowance without one
    (`account`: the person's standing, when the caller has read it already)."""
    plan = (account or standing(user)).plan
    if plan is not None:
        return plan.storage_bytes
    return get_settings().free_storage_mb * MB


def delete_item(item: DatasetItem) -> None:
    """Remove one item's row and every object it has (original, thumbnail, unfinished upload)."""
    delete_item_objects(item)
    db.session.delete(item)
    db.session.commit()


def delete_item_objects(item: DatasetItem) -> None:
    """Delete every object of the item: an unfinished multipart upload, all under its prefix,
    and an original or thumbnail kept elsewhere. The row is the caller's to change or drop."""
    storage = get_storage()
    if item.upload_id and item.upload_key:
        storage.abort_multipart(item.upload_key, item.upload_id)
    storage.delete_prefix(item.object_prefix())
    for key in (item.upload_key, item.storage_key, item.thumbnail_key):
        if key and not key.startswith(item.object_prefix()):
            storage.delete(key)  # unpacked zip entries live under their archive's prefix


class IngestFacts(Protocol):
    """What ingest learnt about a usable file (jobs.ingest.facts.MediaFacts)."""

    media_kind: str
    content_type: str
    width: int
    height: int
    duration_s: float | None
    fps: float | None
    frame_count: int | None


def apply_facts(item: DatasetItem, facts: IngestFacts) -> None:
    """Record on the row what ingest learnt about its file and mark it ready; the caller has
    stored the objects its keys name, and commits."""
    item.media_kind, item.content_type = facts.media_kind, facts.content_type
    item.width, item.height = facts.width, facts.height
    item.duration_s, item.fps, item.frame_count = facts.duration_s, facts.fps, facts.frame_count
    item.status, item.reject_reason = "ready", None


def delete_dataset(dataset: Dataset) -> None:
    """Remove the dataset's rows and every object under its prefix."""
    get_storage().delete_prefix(dataset.storage_prefix())
    db.session.delete(dataset)
    db.session.commit()
