"""A dataset as zips that upload again as the same dataset: every ready item's checked bytes
under the name it was uploaded with, and its caption as a same-name .txt file beside it (the
pairing the uploader and the zip ingest use). A dataset larger than one zip may be (entries or
bytes) is split into parts, each within the limits the zip ingest applies."""

from __future__ import annotations

import posixpath
import re
import zipfile
from typing import IO

from sqlalchemy import select

from app.datasets.captions import caption_key
from app.datasets.limits import (
    ACCEPTED_FILES,
    CAPTION_EXTENSION,
    MAX_ARCHIVE_ENTRIES,
    MAX_ARCHIVE_UNPACKED_BYTES,
    MB,
)
from app.datasets.models import Dataset, DatasetItem
from app.extensions import db, get_storage

# What one part may hold so that it uploads again: the zip ingest's entry and unpacked-size
# limits, and the largest zip upload less room for the entries' headers (under 4 MB for 5,000).
PART_ENTRIES = MAX_ARCHIVE_ENTRIES
PART_BYTES = min(MAX_ARCHIVE_UNPACKED_BYTES, ACCEPTED_FILES[".zip"].max_bytes) - 16 * MB


def dataset_parts(dataset: Dataset) -> list[list[DatasetItem]]:
    """The dataset's ready items in upload order, split into the zips that hold them: an item
    is one entry, two with its caption. A dataset with nothing ready is one empty zip."""
    query = select(DatasetItem).where(
        DatasetItem.dataset_id == dataset.id, DatasetItem.status == "ready"
    )
    parts: list[list[DatasetItem]] = [[]]
    entries = size = 0
    for item in db.session.scalars(query.order_by(DatasetItem.id)):
        caption = len(item.caption.encode()) if item.caption else None
        item_entries, item_bytes = 1 + (caption is not None), item.size_bytes + (caption or 0)
        if parts[-1] and (entries + item_entries > PART_ENTRIES or size + item_bytes > PART_BYTES):
            parts.append([])
            entries = size = 0
        parts[-1].append(item)
        entries, size = entries + item_entries, size + item_bytes
    return parts


def dataset_zip_name(dataset: Dataset, part: int = 1, parts: int = 1) -> str:
    """A zip's file name: the dataset's id and name, in characters every system accepts, and
    which part it is when the dataset takes several."""
    safe = re.sub(r"[^\w.-]+", "-", dataset.name).strip("-.")[:80] or "dataset"
    return (
        f"{dataset.id}-{safe}.zip"
        if parts == 1
        else f"{dataset.id}-{safe}-part-{part}-of-{parts}.zip"
    )


def write_dataset_zip(items: list[DatasetItem], out: IO[bytes], taken: set[str]) -> int:
    """Write `items` (and their captions) as a zip into `out`; return how many. `taken` holds
    the caption keys of names used so far by this dataset's zips, so no two items share one."""
    storage = get_storage()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for item in items:
            name = _unused_name(item.filename, taken)
            big = item.size_bytes >= 2**31
            with (
                storage.open_stream(item.storage_key) as stream,
                archive.open(name, "w", force_zip64=big) as entry,
            ):
                for chunk in stream:
                    entry.write(chunk)
            if item.caption:
                stem = posixpath.splitext(name)[0]
                archive.writestr(
                    stem + CAPTION_EXTENSION, item.caption, compress_type=zipfile.ZIP_DEFLATED
                )
    return len(items)


def _unused_name(filename: str, taken: set[str]) -> str:
    """`filename`, or "name (2).ext" when another entry would pair with the same caption."""
    stem, extension = posixpath.splitext(filename)
    name, number = filename, 1
    while caption_key(name) in taken:
        number += 1
        name = f"{stem} ({number}){extension}"
    taken.add(caption_key(name))
    return name
