"""Ingest of an uploaded zip: every entry becomes its own item (checked like a single upload),
same-name .txt entries become captions, and the zip itself goes once it is unpacked.

Entries are checked on the worker's disk first, so a rejected entry's bytes never reach
storage. Accepted ones are stored under the zip item's prefix (keys built here, never from
entry names). The new rows are written in one short transaction at the end, so a zip refused
half-way leaves no rows, and its stored entries are deleted.
"""

from __future__ import annotations

import logging
from pathlib import Path

from app import object_keys
from app.datasets.captions import caption_key
from app.datasets.limits import megabytes
from app.datasets.models import DatasetItem
from app.datasets.services import apply_facts
from app.extensions import db, get_storage
from jobs.ingest.check import check_file
from jobs.ingest.facts import MediaFacts, Rejected
from jobs.ingest.zip import DEFAULT_LIMITS, ArchiveLimits, ArchiveReader, Entry

UNUSED_CAPTION = "No image or clip with this name is in the zip, so this caption was not used."


def unpack_archive(
    item: DatasetItem,
    local: Path,
    workdir: Path,
    allowance_left: int,
    logger: logging.LoggerAdapter,  # type: ignore[type-arg]
    limits: ArchiveLimits = DEFAULT_LIMITS,
) -> int:
    """Turn the zip item into one item per entry and delete the zip; return the entry count."""
    storage = get_storage()
    prefix = object_keys.archive_entries(item.object_prefix())
    storage.delete_prefix(prefix)  # a re-run after a crash starts clean
    unpacked = workdir / "unpacked"
    unpacked.mkdir(exist_ok=True)
    reader = ArchiveReader(local, unpacked, limits)
    try:
        rows = _entry_rows(item, reader, prefix, allowance_left, logger)
    except BaseException:
        storage.delete_prefix(prefix)
        raise
    finally:
        reader.close()
    db.session.add_all(rows)
    db.session.delete(item)
    db.session.commit()
    if item.upload_key:
        storage.delete(item.upload_key)
    return len(rows)


def _entry_rows(
    item: DatasetItem,
    reader: ArchiveReader,
    prefix: str,
    allowance_left: int,
    logger: logging.LoggerAdapter,  # type: ignore[type-arg]
) -> list[DatasetItem]:
    captions = {caption_key(entry.name): entry for entry in reader.captions().values()}
    paired: set[str] = set()
    rows, stored = [], 0
    for number, entry in enumerate(reader.media()):
        row = _row(item, entry.name)
        rows.append(row)
        key = caption_key(entry.name)
        if key in captions:
            paired.add(key)
            row.caption = captions[key].text
        if entry.reason or entry.path is None:
            _refuse(row, entry.reason or "The entry could not be read.")
            continue
        try:
            facts = check_file(entry.path, entry.extension)
        except Rejected as exc:
            entry.path.unlink(missing_ok=True)
            _refuse(row, str(exc))
            continue
        size = entry.path.stat().st_size
        stored += size
        if stored > allowance_left:
            raise Rejected(
                f"Unpacked, the zip holds more than the {megabytes(max(0, allowance_left))} "
                "left in your storage allowance; nothing was kept."
            )
        _store(
            row,
            entry.path,
            entry.extension,
            facts,
            object_keys.archive_entry(item.object_prefix(), number),
        )
        entry.path.unlink()
        logger.info("entry %d ready: %s", number, facts.media_kind)
    rows.extend(_caption_rows(item, captions, paired))
    if not rows:
        raise Rejected("The zip holds no images or clips.")
    return rows


def _row(item: DatasetItem, name: str) -> DatasetItem:
    return DatasetItem(
        dataset_id=item.dataset_id,
        filename=name,
        archive_name=item.filename[:255],
        content_type="application/octet-stream",
        size_bytes=0,
        storage_key="",
    )


def _refuse(row: DatasetItem, reason: str) -> None:
    row.status, row.reject_reason = "rejected", reason[:500]


def _store(row: DatasetItem, path: Path, extension: str, facts: MediaFacts, prefix: str) -> None:
    storage = get_storage()
    row.storage_key = object_keys.entry_original(prefix, extension)
    row.thumbnail_key = object_keys.item_thumbnail(prefix)
    storage.upload_file(row.storage_key, path, facts.content_type)
    storage.put(row.thumbnail_key, facts.thumbnail, "image/webp")
    row.size_bytes = path.stat().st_size
    apply_facts(row, facts)


def _caption_rows(
    item: DatasetItem, captions: dict[str, Entry], paired: set[str]
) -> list[DatasetItem]:
    """Caption files that could not be used show up as rejected items with the reason."""
    rows = []
    for key, caption in captions.items():
        if caption.reason or key not in paired:
            row = _row(item, caption.name)
            _refuse(row, caption.reason or UNUSED_CAPTION)
            rows.append(row)
    return rows
