"""Captions: edit one, prepend the trigger word to all, find and replace, pair by file name,
and the auto-caption job when a captioning model is configured."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

from sqlalchemy import select

from app.datasets.limits import MAX_CAPTION_CHARS
from app.datasets.models import Dataset, DatasetItem
from app.datasets.services import DatasetError
from app.datasets.uploads import check_caption, clean_display_name
from app.extensions import db, get_settings
from app.queues import enqueue_task
from catalogue.prompts import has_trigger

AUTO_CAPTION_TIMEOUT_S = 2 * 3600
NO_CAPTION_MODEL = (
    "Automatic captions are not available: no captioning model is configured on this server "
    "(the operator sets ATTUNE_CAPTION_MODEL). Write captions by hand below, or upload a .txt "
    "file with the same name beside each image."
)


def set_caption(item: DatasetItem, caption: object) -> DatasetItem:
    """Replace one item's caption (empty text clears it)."""
    item.caption = check_caption(caption)
    db.session.commit()
    return item


def _captionable(dataset: Dataset) -> list[DatasetItem]:
    query = select(DatasetItem).where(
        DatasetItem.dataset_id == dataset.id, DatasetItem.status != "rejected"
    )
    return list(db.session.scalars(query.order_by(DatasetItem.id)))


def _save_all(changes: Iterable[tuple[DatasetItem, str]]) -> int:
    """Apply every new caption, or none if one would be too long."""
    changes = list(changes)
    for item, text in changes:
        if len(text) > MAX_CAPTION_CHARS:
            raise DatasetError(
                f"The caption of “{item.filename}” would grow past {MAX_CAPTION_CHARS:,} "
                "characters; nothing was changed."
            )
    for item, text in changes:
        item.caption = text or None
    db.session.commit()
    return len(changes)


def prepend_trigger(dataset: Dataset) -> int:
    """Put the trigger word at the front of every caption that lacks it; return how many."""
    trigger = dataset.trigger_word
    if not trigger:
        raise DatasetError("Set a trigger word for this dataset first.")
    changes = []
    for item in _captionable(dataset):
        caption = item.caption or ""
        if has_trigger(caption, trigger):  # the rule training applies (catalogue.prompts)
            continue
        changes.append((item, f"{trigger}, {caption}" if caption else trigger))
    return _save_all(changes)


def find_and_replace(dataset: Dataset, find: str, replace: str) -> int:
    """Replace literal text in every caption; return how many captions changed."""
    if not find:
        raise DatasetError("Enter the text to find.")
    if len(find) > MAX_CAPTION_CHARS or len(replace) > MAX_CAPTION_CHARS:
        raise DatasetError("The search and replacement texts are too long.")
    changes = [
        (item, item.caption.replace(find, replace).strip())
        for item in _captionable(dataset)
        if item.caption and find in item.caption
    ]
    return _save_all(changes)


def caption_key(path: str) -> str:
    """The name a caption pairs on: the cleaned path without its extension, case-folded."""
    return posixpath.splitext(clean_display_name(path))[0].casefold()


def pair_captions(dataset: Dataset, captions: dict[str, object]) -> tuple[int, list[str]]:
    """Give each '<path>.txt' text to the item with the same path and name; return the
    number paired and the caption files that matched nothing."""
    items: dict[str, DatasetItem] = {}
    for item in _captionable(dataset):
        items.setdefault(caption_key(item.filename), item)
    changes, unmatched = [], []
    for path, text in captions.items():
        item = items.get(caption_key(path))
        if item is None:
            unmatched.append(path)
            continue
        changes.append((item, check_caption(text) or ""))
    return _save_all(changes), unmatched


def auto_caption_available() -> bool:
    """True when the operator configured a captioning model."""
    return bool(get_settings().caption_model)


def request_auto_captions(dataset: Dataset) -> None:
    """Queue the captioning job on the GPU queue, or explain that no model is configured."""
    if not auto_caption_available():
        raise DatasetError(NO_CAPTION_MODEL)
    if not any(item.status == "ready" for item in dataset.items):
        raise DatasetError("There are no ready images or clips to caption yet.")
    enqueue_task(
        "jobs.captions.auto_caption",
        dataset.id,
        queue=get_settings().caption_queue,
        timeout_s=AUTO_CAPTION_TIMEOUT_S,
    )
