"""A dataset as a zip that uploads again as the same dataset: every ready item's checked bytes
under the name it was uploaded with, and its caption as a same-name .txt file beside it (the
pairing the uploader and the zip ingest use)."""

from __future__ import annotations

import posixpath
import re
import zipfile
from typing import IO

from sqlalchemy import select

from app.datasets.captions import caption_key
from app.datasets.limits import CAPTION_EXTENSION
from app.datasets.models import Dataset, DatasetItem
from app.extensions import db, get_storage


def dataset_zip_name(dataset: Dataset) -> str:
    """The zip's file name: the dataset's id and name, in characters every system accepts."""
    safe = re.sub(r"[^\w.-]+", "-", dataset.name).strip("-.")[:80] or "dataset"
    return f"{dataset.id}-{safe}.zip"


def write_dataset_zip(dataset: Dataset, out: IO[bytes]) -> int:
    """Write the dataset's ready items (and captions) as a zip into `out`; return how many."""
    storage, taken = get_storage(), set[str]()
    query = select(DatasetItem).where(
        DatasetItem.dataset_id == dataset.id, DatasetItem.status == "ready"
    )
    count = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for item in db.session.scalars(query.order_by(DatasetItem.id)):
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
            count += 1
    return count


def _unused_name(filename: str, taken: set[str]) -> str:
    """`filename`, or "name (2).ext" when another entry would pair with the same caption."""
    stem, extension = posixpath.splitext(filename)
    name, number = filename, 1
    while caption_key(name) in taken:
        number += 1
        name = f"{stem} ({number}){extension}"
    taken.add(caption_key(name))
    return name
